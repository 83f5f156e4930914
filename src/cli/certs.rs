//! `podgrace certs`: a CA and a serving certificate for the webhook Service, as files.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::CertsArgs;
use crate::server::certificates;

pub(super) fn run(args: &CertsArgs) -> anyhow::Result<ExitCode> {
    let mut sans = certificates::service_names(&args.service, &args.namespace);
    sans.extend(args.san.iter().cloned());
    let g = certificates::generate(&sans, args.days)?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    write(&args.out_dir.join("ca.crt"), &g.ca_cert_pem, false)?;
    write(&args.out_dir.join("ca.key"), &g.ca_key_pem, true)?;
    write(&args.out_dir.join("tls.crt"), &g.cert_pem, false)?;
    write(&args.out_dir.join("tls.key"), &g.key_pem, true)?;
    let dir = args.out_dir.display();
    println!(
        "wrote {dir}/ca.crt, {dir}/ca.key, {dir}/tls.crt, {dir}/tls.key for {}",
        sans.join(", ")
    );
    println!(
        "next: kubectl -n {ns} create secret tls {svc}-tls --cert={dir}/tls.crt --key={dir}/tls.key\n      helm install podgrace charts/podgrace -n {ns} --set certificates.mode=secret --set certificates.secretName={svc}-tls --set-file certificates.caBundle={dir}/ca.crt",
        ns = args.namespace,
        svc = args.service,
    );
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, content: &str, private: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(content.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
