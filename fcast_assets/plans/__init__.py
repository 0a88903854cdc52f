"""Table-driven execution: plans (run_plan / run_step), pre-flight validation against the registry and the
compatibility matrix (run_validation), the runner (run_result, run_metric, run_error, run_artifact, run_resource)."""
