//! Client certificate names (Typha's required client CN or URI SAN).

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::config::ClientNames;

/// Checks the client's leaf certificate (DER) against the required names. `Err` says why not.
pub(crate) fn check_client_names(
    leaf_der: Option<&[u8]>,
    names: &ClientNames,
) -> Result<(), String> {
    if names.is_empty() {
        return Ok(());
    }
    let der = leaf_der.ok_or("no client certificate")?;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("the client certificate does not parse: {e}"))?;
    let cns: Vec<&str> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .collect();
    let uris: Vec<&str> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let cn_ok = names
        .common_name
        .as_deref()
        .is_some_and(|want| cns.contains(&want));
    let uri_ok = names
        .uri_san
        .as_deref()
        .is_some_and(|want| uris.contains(&want));
    if cn_ok || uri_ok {
        Ok(())
    } else {
        Err(format!(
            "client certificate names (CN {cns:?}, URI SANs {uris:?}) do not include the required {}",
            match (&names.common_name, &names.uri_san) {
                (Some(cn), Some(uri)) => format!("CN {cn:?} or URI SAN {uri:?}"),
                (Some(cn), None) => format!("CN {cn:?}"),
                (None, Some(uri)) => format!("URI SAN {uri:?}"),
                (None, None) => unreachable!(),
            }
        ))
    }
}
