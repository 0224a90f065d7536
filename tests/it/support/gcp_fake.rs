//! The Google APIs the GCP probes read, as the reference service serves them
//! (`pathwatch::sim::gcp`): the metadata server's token endpoint, and the VPC Access, Cloud SQL
//! Admin and Cloud Run Admin v2 resources with bodies shaped like Google's. A thin wrapper over
//! one in-process sim, so the tests and `pathwatch demo` share one implementation; every
//! resource path has a fault switch.

use super::sim::Sim;
use pathwatch::sim::{Faults, SimOptions};
use serde_json::Value;
use std::net::SocketAddr;

pub use pathwatch::sim::GcpApiFault as Fault;
pub use pathwatch::sim::gcp::{
    CONNECTOR, INSTANCE, PROJECT, REGION, SECRET_ENV_VALUE, SERVICE, TOKEN, connection_name,
    connector, connector_full_name, connector_path, instance, instance_path, service, service_path,
};

pub struct GcpFake {
    pub addr: SocketAddr,
    sim: Sim,
}

impl GcpFake {
    /// Starts the fake with the staging connector, instance and service in place.
    pub fn start() -> GcpFake {
        let sim = Sim::start_with(SimOptions::default());
        GcpFake {
            addr: sim.addr,
            sim,
        }
    }

    /// `api_base` for every API (they share the fake).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GCE_METADATA_HOST` form: host:port.
    pub fn metadata_host(&self) -> String {
        self.addr.to_string()
    }

    pub fn set_resource(&self, path: &str, body: Value) {
        self.sim.state.set_gcp_resource(path, body);
    }

    pub fn set_fault(&self, path: &str, fault: Option<Fault>) {
        self.change(|f| match fault {
            Some(fault) => {
                f.gcp_api.insert(path.to_string(), fault);
            }
            None => {
                f.gcp_api.remove(path);
            }
        });
    }

    pub fn set_metadata_fault(&self, fault: Option<Fault>) {
        self.change(|f| f.gcp_metadata = fault);
    }

    pub fn token_calls(&self) -> usize {
        self.sim.state.gcp_token_calls()
    }

    pub fn api_calls(&self, path: &str) -> usize {
        self.sim.state.gcp_api_calls(path)
    }

    fn change(&self, edit: impl FnOnce(&mut Faults)) {
        let mut faults = self.sim.state.faults();
        edit(&mut faults);
        self.sim.state.set_faults(faults);
    }
}
