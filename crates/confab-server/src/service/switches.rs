//! Feature switches (placeholder until the switch registry lands).

use super::Service;
use confab_core::DomainError;

impl Service {
    /// Reloads the feature switches from the control data.
    pub(crate) async fn refresh_switches(&self) -> Result<(), DomainError> {
        Ok(())
    }
}
