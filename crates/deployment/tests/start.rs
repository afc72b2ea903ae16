//! A deployment comes up on loopback with every party healthy and certified, and comes up
//! again on the same directory reusing keys, certificates, databases and tokens.

use deployment::{Deployment, DeploymentConfig};
use party_api::{Auth, HttpClient, Method};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_restarts_and_reuses_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = DeploymentConfig::new(dir.path().join("d"));
    let first = Deployment::start(config.clone()).await.unwrap();
    for party in first.parties() {
        let health: serde_json::Value = HttpClient::new(&party.url)
            .unwrap()
            .call(Method::Get, "/health", None::<&()>, Auth::None)
            .await
            .unwrap();
        assert_eq!(health["status"], "ok", "{}", party.id);
    }
    let now = pki::UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    pki::verify_chain(
        std::slice::from_ref(&first.irc),
        std::slice::from_ref(&first.issuer_anchor),
        &[],
        now,
        pki::Role::Issuer,
    )
    .unwrap();
    assert_eq!(first.dpr.issuer_id(), &first.data_registrar.id);
    let listed = std::fs::read_to_string(dir.path().join("d/deployment.json")).unwrap();
    assert!(listed.contains(&first.issuer.url), "{listed}");
    let (id, url) = deployment::listed_party(&dir.path().join("d"), "provider").unwrap();
    assert_eq!(
        (id, url),
        (first.provider.id.clone(), first.provider.url.clone())
    );
    assert!(deployment::listed_party(&dir.path().join("d"), "nobody").is_err());
    let (irc, token) = (first.irc.clone(), first.issuer.operator_token.clone());
    first.stop().await.unwrap();

    let second = Deployment::start(config).await.unwrap();
    assert_eq!(second.irc, irc, "a valid IRC is reused");
    assert_eq!(second.issuer.operator_token, token);
    let policy: serde_json::Value = HttpClient::new(&second.issuer.url)
        .unwrap()
        .call(
            Method::Get,
            &format!("/v1/providers/{}", second.provider.id),
            None::<&()>,
            Auth::None,
        )
        .await
        .unwrap();
    assert_eq!(policy["status"], "allowed");
    second.stop().await.unwrap();
}
