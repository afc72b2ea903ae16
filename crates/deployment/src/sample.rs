//! The sample catalog a fresh deployment offers (APP-1, APP-2), so `cardwright up`, the demo,
//! the portal and the tests have something to install: two applications in the issuer's
//! application DB, the provider's membership terms, and one service for each application. The
//! second application is larger than a new card's default room, so the capacity refusal is
//! there to see. Publishing again on the same databases changes nothing.

use anyhow::Context as _;
use party_api::issuer::IssuerClient;
use party_api::issuer_download::ApplicationRequest;
use party_api::provider::ProviderClient;
use party_api::provider_download::AddServiceRequest;
use party_api::HttpClient;

use crate::Deployment;

/// One sample service and the application it installs.
#[derive(Debug, Clone)]
pub struct SampleService {
    pub service_id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// The application's AID, hex.
    pub aid: &'static str,
    pub application: &'static str,
    pub version: u32,
    /// Bytes of its code package.
    pub size: u32,
}

/// The transit pass: small enough for any registered card.
pub const TRANSIT: SampleService = SampleService {
    service_id: "transit",
    name: "City Transit Pass",
    description: "Tap in and out on buses and trams; monthly passes and single fares.",
    aid: "a0000008710101",
    application: "Transit Wallet",
    version: 1,
    size: 2_400,
};

/// The lounge membership: larger than a new card's 4 096 bytes (the capacity refusal).
pub const LOUNGE: SampleService = SampleService {
    service_id: "lounge",
    name: "Airport Lounge Membership",
    description: "Entry to partner lounges, with your visits kept on the card.",
    aid: "a0000008710202",
    application: "Lounge Key",
    version: 1,
    size: 12_480,
};

/// Every sample service, in catalog order.
pub const SAMPLE_SERVICES: [SampleService; 2] = [TRANSIT, LOUNGE];

/// The provider's membership terms in the sample catalog.
pub const SAMPLE_TERMS: &str = "Membership terms of provider-1\n\n\
1. The service is provided to the holder of the card it is installed on.\n\
2. Your name and e-mail address are passed on by your card's issuer to us, only to run the \
service you choose, and are never sold.\n\
3. You may leave at any time by removing the application from your card.\n\
4. These terms are governed by the law of the provider's country.";

/// The code package of a sample application: deterministic bytes of `size`, led by a readable
/// header, so every deployment offers the same digest.
pub fn sample_code(service: &SampleService) -> Vec<u8> {
    let mut code = format!(
        "CWAP1 {} v{} {}\n",
        service.application, service.version, service.aid
    )
    .into_bytes();
    let mut block = 0u32;
    while code.len() < service.size as usize {
        let mut seed = service.aid.as_bytes().to_vec();
        seed.extend(block.to_be_bytes());
        code.extend(crypto::sha256(&seed).0);
        block += 1;
    }
    code.truncate(service.size as usize);
    code
}

impl Deployment {
    /// Publishes the sample catalog: the applications in the issuer's application DB, the
    /// provider's terms (a new version only if the latest differs) and its services.
    pub async fn publish_sample_catalog(&self) -> anyhow::Result<()> {
        let issuer = IssuerClient::new(HttpClient::new(&self.issuer.url)?);
        let provider = ProviderClient::new(HttpClient::new(&self.provider.url)?);
        for service in SAMPLE_SERVICES {
            issuer
                .add_application(
                    &self.issuer.operator_token,
                    &ApplicationRequest {
                        aid: service.aid.to_string(),
                        version: service.version,
                        provider: self.provider.id.as_str().to_string(),
                        name: service.application.to_string(),
                        description: Some(service.description.to_string()),
                        code: hex::encode(sample_code(&service)),
                        policy: None,
                    },
                )
                .await
                .with_context(|| format!("adding the application {}", service.application))?;
        }
        let latest = provider.terms().await.ok();
        if latest.is_none_or(|t| t.text != SAMPLE_TERMS) {
            provider
                .publish_terms(&self.provider.operator_token, SAMPLE_TERMS)
                .await
                .context("publishing the provider's terms")?;
        }
        for service in SAMPLE_SERVICES {
            provider
                .add_service(
                    &self.provider.operator_token,
                    &AddServiceRequest {
                        service_id: service.service_id.to_string(),
                        name: service.name.to_string(),
                        description: service.description.to_string(),
                        aid: service.aid.to_string(),
                        version: service.version,
                        issuer: self.issuer.id.as_str().to_string(),
                    },
                )
                .await
                .with_context(|| format!("adding the service {}", service.service_id))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_code_has_the_stated_size_and_is_deterministic() {
        for s in SAMPLE_SERVICES {
            let code = sample_code(&s);
            assert_eq!(code.len(), s.size as usize);
            assert_eq!(code, sample_code(&s));
            assert!(code.starts_with(b"CWAP1 "));
        }
        assert_ne!(sample_code(&TRANSIT), sample_code(&LOUNGE));
    }
}
