//! Management: the operations behind the CLI, the REST API and the settings pages. Each
//! surface translates its input into these calls and their errors into its own answers;
//! authorization, validation, sealing and auditing happen here, once.

pub mod deploy_tokens;

pub use deploy_tokens::{
    Actor, CiVariables, CreateRequest, DeployTokenManager, FieldError, ManageError,
};
