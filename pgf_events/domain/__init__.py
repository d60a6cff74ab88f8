"""The domain: value objects, the Patient aggregate, and the clinical rules as pure functions."""
