//! [`Sandbox::spawn_async`]: the async face's spawn (cargo feature `tokio`).

use super::Sandbox;
use crate::Error;
use crate::asynchronous::Child;

impl Sandbox {
    /// Spawns the sandbox as [`spawn`](Sandbox::spawn) does and returns its async face (see
    /// [`crate::asynchronous`]). Must be called within a tokio runtime with its IO driver;
    /// outside one it returns [`Error::InvalidInput`] and spawns nothing.
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn spawn_async(&mut self) -> Result<Child, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::invalid(
                "spawn_async must be called within a tokio runtime (with its IO driver enabled)",
            )
        })?;
        Child::new(self.spawn()?, handle)
    }
}
