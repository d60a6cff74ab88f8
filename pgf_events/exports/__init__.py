"""Submission exports: SDTM datasets (Dataset-JSON, XPT), define.xml and the submission package."""
