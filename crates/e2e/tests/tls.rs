//! TLS between parties: a registrar served over https by server-kit's listener, reached by
//! party-api's client trusting only the roots it is given (there is no default trust store).

use std::path::Path;

use party_api::registrar::RegistrarClient;
use party_api::{ClientError, HttpClient};

fn make_certificate(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let files = server_kit::testing::self_signed_tls_for_tests(dir, name);
    (files.certificate_chain, files.private_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_is_reached_over_tls_with_the_given_roots_only() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_certificate(dir.path(), "server");
    let (other, _) = make_certificate(dir.path(), "other");
    let config = registrar::RegistrarConfig::new(
        registrar::RegistrarRole::IssuerRegistrar,
        pki::PartyId::new("issuer-registrar").unwrap(),
        dir.path().to_path_buf(),
        format!("sqlite:{}", dir.path().join("r.db").display()),
        "127.0.0.1:0".parse().unwrap(),
    );
    let app = registrar::open(&config).await.unwrap();
    let files = server_kit::TlsFiles {
        certificate_chain: cert.clone(),
        private_key: key,
    };
    let listener = server_kit::bind("127.0.0.1:0".parse().unwrap(), Some(&files))
        .await
        .unwrap();
    let port = listener.local_addr().port();
    tokio::spawn(listener.serve(registrar::router(&app), std::future::pending()));
    let url = format!("https://localhost:{port}");

    let roots = std::fs::read(&cert).unwrap();
    let client = RegistrarClient::new(HttpClient::with_roots_pem(&url, &roots).unwrap());
    let root = client.root_certificate().await.unwrap();
    assert_eq!(root.subject_id().as_str(), "issuer-registrar");

    // No roots: refused before connecting. Other roots: the handshake fails, said as such.
    assert!(matches!(
        HttpClient::new(&url),
        Err(ClientError::InvalidUrl { .. })
    ));
    let stranger = RegistrarClient::new(
        HttpClient::with_roots_pem(&url, &std::fs::read(&other).unwrap()).unwrap(),
    );
    let err = stranger.root().await.unwrap_err();
    assert!(
        matches!(err, ClientError::Transport { .. }) && err.to_string().contains("TLS"),
        "{err}"
    );
    // Plain HTTP to the TLS port is not answered as HTTP.
    let plain = RegistrarClient::new(HttpClient::new(&format!("http://127.0.0.1:{port}")).unwrap());
    assert!(plain.root().await.is_err());
}
