//! Generates the gRPC code from `proto/` with `protox` (pure Rust), so building needs no `protoc`.
//! The encoded descriptor set is written beside the code for the reflection service.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/authctl/agent/v1/agent.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("authctl_descriptor.bin"), fds.encode_to_vec())?;
    // Messages that carry a token or a secret get a redacting `Debug` of their own (src/lib.rs).
    tonic_prost_build::configure()
        .skip_debug([
            ".authctl.agent.v1.Token",
            ".authctl.agent.v1.AddProviderRequest",
        ])
        .compile_fds(fds)?;
    Ok(())
}
