"""A JSON Schema for CDISC Dataset-JSON 1.1, written from the standard's text (no package on the
registries ships the official schema file): required top-level attributes, the column object, the
dataType and targetDataType enumerations, the version pattern, and rows as arrays of scalars."""

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["datasetJSONCreationDateTime", "datasetJSONVersion", "itemGroupOID", "records", "name", "label",
                 "columns"],
    "properties": {
        "datasetJSONCreationDateTime": {"type": "string",
                                        "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?$"},
        "datasetJSONVersion": {"type": "string", "pattern": r"^1\.1(\.\d+)?$"},
        "fileOID": {"type": "string"},
        "dbLastModifiedDateTime": {"type": "string"},
        "originator": {"type": "string"},
        "sourceSystem": {"type": "object", "required": ["name", "version"],
                         "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                         "additionalProperties": False},
        "studyOID": {"type": "string"},
        "metaDataVersionOID": {"type": "string"},
        "metaDataRef": {"type": "string"},
        "itemGroupOID": {"type": "string", "minLength": 1},
        "records": {"type": "integer", "minimum": 0},
        "name": {"type": "string", "minLength": 1},
        "label": {"type": "string"},
        "columns": {"type": "array", "items": {
            "type": "object", "required": ["itemOID", "name", "label", "dataType"],
            "properties": {
                "itemOID": {"type": "string", "minLength": 1}, "name": {"type": "string", "minLength": 1},
                "label": {"type": "string"},
                "dataType": {"enum": ["string", "integer", "decimal", "float", "double", "boolean", "datetime",
                                      "date", "time", "URI"]},
                "targetDataType": {"enum": ["integer", "decimal"]},
                "length": {"type": "integer", "minimum": 1}, "displayFormat": {"type": "string"},
                "keySequence": {"type": "integer", "minimum": 1},
            }, "additionalProperties": False}},
        "rows": {"type": "array", "items": {"type": "array",
                                            "items": {"type": ["string", "number", "boolean", "null"]}}},
    },
    "additionalProperties": False,
}
