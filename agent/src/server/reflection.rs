//! Server reflection (v1 and v1alpha: many clients — grpcurl's older builds, Python's
//! grpcio-reflection, GUI clients — speak only v1alpha), each built on its first request. Built,
//! the two services' descriptor maps hold 130 kB of the agent's memory for its whole life, and
//! almost no agent is ever asked (bench rows 7).

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tonic::codegen::{Service, http};
use tonic::server::NamedService;

/// A gRPC service built by `build` on its first request, then shared by every connection.
pub struct OnFirstCall<S> {
    built: Arc<OnceLock<S>>,
    build: fn() -> S,
}

impl<S> OnFirstCall<S> {
    pub fn new(build: fn() -> S) -> Self {
        Self {
            built: Arc::new(OnceLock::new()),
            build,
        }
    }
}

impl<S> Clone for OnFirstCall<S> {
    fn clone(&self) -> Self {
        Self {
            built: Arc::clone(&self.built),
            build: self.build,
        }
    }
}

impl<S: NamedService> NamedService for OnFirstCall<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for OnFirstCall<S>
where
    S: Service<http::Request<B>> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    /// Ready: tonic's generated servers, which this wraps, are always ready.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.built.get_or_init(self.build).clone().call(request)
    }
}

/// A reflection builder that knows the agent's services (both versions are built from it).
fn described() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(authctl_proto::FILE_DESCRIPTOR_SET)
}

#[expect(
    clippy::expect_used,
    reason = "the descriptor set is compiled in; a unit test builds it"
)]
pub fn v1() -> tonic_reflection::server::v1::ServerReflectionServer<
    impl tonic_reflection::server::v1::ServerReflection,
> {
    described()
        .build_v1()
        .expect("the compiled-in descriptor set")
}

#[expect(
    clippy::expect_used,
    reason = "the descriptor set is compiled in; a unit test builds it"
)]
pub fn v1alpha() -> tonic_reflection::server::v1alpha::ServerReflectionServer<
    impl tonic_reflection::server::v1alpha::ServerReflection,
> {
    described()
        .build_v1alpha()
        .expect("the compiled-in descriptor set")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_build_from_the_compiled_in_descriptors() {
        let _ = v1();
        let _ = v1alpha();
    }

    #[test]
    fn the_service_is_built_once_and_shared_by_clones() {
        let mut a = OnFirstCall::new(v1);
        let b = a.clone();
        assert!(b.built.get().is_none());
        drop(a.call(http::Request::new(tonic::body::Body::empty())));
        assert!(b.built.get().is_some());
        assert!(Arc::ptr_eq(&a.built, &b.built));
    }
}
