//! What every HTTP surface shares below its own protocol: bounded request bodies, the
//! client's address, the header-size limit and the `{"errors":[…]}` JSON error shape.
//! Nothing here decides anything, and nothing here imports a surface.

pub mod body;
pub mod client;
pub mod error;
pub mod ids;
pub mod limits;
pub mod refusals;
