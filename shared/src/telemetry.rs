//! Logging for every function: JSON lines when Lambda's log format is JSON (template.yaml sets
//! it), level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.

pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
