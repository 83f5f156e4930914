//! The certificate Secret in the API server: read, create if absent, update with optimistic
//! concurrency. Replicas agree through the API server alone: a create that finds the name taken
//! (`409 AlreadyExists`) or an update from a stale resourceVersion (`409 Conflict`) lost a race,
//! and the loser reads the winner's Secret back.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client, Resource};

use super::material::Material;

/// The annotation that tells a reader who owns the Secret.
const OWNER_NOTE: &str = "podgrace.io/certificates";

/// The Secret `namespace/name`.
#[derive(Clone)]
pub struct SecretStore {
    api: Api<Secret>,
    name: String,
    timeout: Duration,
}

/// A Secret as read: its contents (or why they are unusable), version and reference.
#[derive(Debug)]
pub struct Stored {
    /// The material, or why it cannot be used.
    pub material: Result<Material, super::material::MaterialError>,
    /// Its resourceVersion (the precondition of the next update).
    pub resource_version: String,
    /// The reference Events name.
    pub reference: ObjectReference,
}

/// The outcome of a write.
#[derive(Debug)]
pub enum Written {
    /// Stored; the new resourceVersion and reference.
    Stored(String, ObjectReference),
    /// Another writer was first (409): read again.
    Lost,
}

impl SecretStore {
    /// The Secret `name` in `namespace`; a request not answered within `timeout` fails (an
    /// API server out of reach must not hold up the renewal of the served certificate).
    pub fn new(client: Client, namespace: &str, name: &str, timeout: Duration) -> Self {
        SecretStore {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            timeout,
        }
    }

    async fn bounded<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kube::Error> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(result) => result,
            Err(_) => Err(kube::Error::Service(
                format!("no answer within {:?}", self.timeout).into(),
            )),
        }
    }

    /// The Secret's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the Secret; `None` when it does not exist.
    pub async fn get(&self) -> Result<Option<Stored>, kube::Error> {
        Ok(self
            .bounded(self.api.get_opt(&self.name))
            .await?
            .map(|s| stored(&s)))
    }

    /// The Secret holding `material`; with a resourceVersion, an update only of that version.
    fn secret(&self, material: &Material, resource_version: Option<&str>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: resource_version.map(str::to_owned),
                annotations: Some(annotations()),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: Some(material.to_data()),
            ..Secret::default()
        }
    }

    /// Creates the Secret with `material` unless it exists.
    pub async fn create(&self, material: &Material) -> Result<Written, kube::Error> {
        let secret = self.secret(material, None);
        written(
            self.bounded(self.api.create(&PostParams::default(), &secret))
                .await,
        )
    }

    /// Replaces the Secret's data with `material` if it is still at `resource_version`.
    pub async fn update(
        &self,
        material: &Material,
        resource_version: &str,
    ) -> Result<Written, kube::Error> {
        let secret = self.secret(material, Some(resource_version));
        written(
            self.bounded(
                self.api
                    .replace(&self.name, &PostParams::default(), &secret),
            )
            .await,
        )
    }
}

fn annotations() -> BTreeMap<String, String> {
    BTreeMap::from([(
        OWNER_NOTE.to_owned(),
        "managed by podgrace (certificates.mode self): CA, serving pair and caBundle; delete it to start over with a new CA".to_owned(),
    )])
}

fn stored(secret: &Secret) -> Stored {
    Stored {
        material: Material::from_data(&secret.data.clone().unwrap_or_default()),
        resource_version: secret.metadata.resource_version.clone().unwrap_or_default(),
        reference: secret.object_ref(&()),
    }
}

fn written(result: Result<Secret, kube::Error>) -> Result<Written, kube::Error> {
    match result {
        Ok(s) => Ok(Written::Stored(
            s.metadata.resource_version.clone().unwrap_or_default(),
            s.object_ref(&()),
        )),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Written::Lost),
        Err(e) => Err(e),
    }
}
