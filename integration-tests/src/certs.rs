//! A cluster CA and certificates made at run time (rcgen; no key is checked
//! in), as the folders `--tls` reads (`ca.crt`, `tls.crt`, `tls.key`) or as
//! in-process [`Tls`].

use std::path::Path;
use std::sync::Arc;

use hotswap_common::trust::{CA_FILE, CERT_FILE, KEY_FILE, Tls};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// One certificate and its key, signed by a [`TestCa`].
pub struct Issued {
    /// The CA's certificate, PEM.
    pub ca: String,
    /// The certificate, PEM.
    pub cert: String,
    /// Its private key, PEM.
    pub key: String,
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA's certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `name`, `localhost` and 127.0.0.1 (as server and
    /// as client), signed by this CA.
    pub fn issue(&self, name: &str) -> Issued {
        let names = vec![
            name.to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Issued {
            ca: self.pem(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// As [`TestCa::issue`], for a server or client in this process.
    pub fn tls(&self, name: &str) -> Arc<Tls> {
        self.issue(name).tls()
    }
}

impl Issued {
    /// The certificate, key and CA as hotswap's TLS settings.
    pub fn tls(&self) -> Arc<Tls> {
        Arc::new(Tls::from_pem(&self.ca, &self.cert, &self.key))
    }

    /// Writes the three files into `dir`, as `--tls` reads them.
    pub fn write(&self, dir: &Path) {
        std::fs::write(dir.join(CA_FILE), &self.ca).expect("write ca.crt");
        std::fs::write(dir.join(CERT_FILE), &self.cert).expect("write tls.crt");
        std::fs::write(dir.join(KEY_FILE), &self.key).expect("write tls.key");
    }
}
