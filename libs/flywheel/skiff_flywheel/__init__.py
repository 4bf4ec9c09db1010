"""The conversion loop's library (the six steps; docs/architecture.md lists every module).

* S1 log: `redaction` (applied before a record leaves its process), `call_records` (the
  records workers, the LLM tier and the planner publish), `call_log` (reading the stream or
  an export);
* S2 curate: `curate`, `sgd` (imports), `dataset` (versioned datasets on disk);
* S3 cluster: `logged_calls`, `embedding`, `masking`, `clusters`;
* S4 select: `catalog`, `candidates`, `reports`;
* S5 fine-tune: `finetune` and the `training_*`, `lora_*`, `gguf_lora`, `base_model`,
  `checkpoints` modules (torch and friends: the `flywheel` extra, imported lazily);
* S6 evaluate and swap: `evaluate`, `registration`, `artifacts` (the adapter directory and
  its checks).
"""
