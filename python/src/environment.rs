//! What a predictor's processes get of the worker's environment: the
//! basics a Python program expects, never the worker's credentials. Cloud
//! keys, tokens and everything else stay with the worker; a predictor that
//! needs a variable gets it from its API's `predictor.env`.

/// Variables passed on as they are.
const INHERITED: [&str; 13] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "LD_LIBRARY_PATH",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "TF_CPP_MIN_LOG_LEVEL",
    // Where the embedded CPython finds its standard library (the image
    // sets it).
    "PYTHONHOME",
];

/// Locale variables (`LC_ALL`, `LC_CTYPE`, ...).
const LOCALE_PREFIX: &str = "LC_";

/// Of the worker's variables, those its predictor processes inherit: the
/// basics above, the locale, and the numeric libraries' thread counts the
/// user set.
pub fn inherited(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.into_iter()
        .filter(|(name, _)| {
            INHERITED.contains(&name.as_str())
                || crate::THREAD_VARS.contains(&name.as_str())
                || name.starts_with(LOCALE_PREFIX)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_behind() {
        let worker = [
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
            ("LC_ALL", "C.UTF-8"),
            ("OMP_NUM_THREADS", "2"),
            ("AWS_SECRET_ACCESS_KEY", "s3cret"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("GOOGLE_APPLICATION_CREDENTIALS", "/keys/sa.json"),
            ("HOTSWAP_CLUSTER_TOKEN", "t0ken"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer x"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()));
        let names: Vec<String> = inherited(worker).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["PATH", "HOME", "LC_ALL", "OMP_NUM_THREADS"]);
    }
}
