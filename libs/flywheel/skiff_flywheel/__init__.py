"""The conversion loop's library: PII redaction of call records, curated datasets, imports.

* `redaction`: `redact` and `redact_value`, applied before a call record leaves a worker;
* `dataset`: a versioned dataset on disk (train/eval JSONL and a manifest with a content hash);
* `curate`: call records to a dataset (validate, deduplicate, split by group), and SGD imports.
"""
