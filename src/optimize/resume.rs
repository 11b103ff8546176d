//! What binds a search's run folder to what it searched: a fingerprint of the experiment's
//! settings and of its data and signal files' contents, written when the search starts and
//! checked on `--resume`, so finished trials are only ever reused for the same question.
//!
//! The fingerprint is SHA-256 over (a) the resolved experiment as TOML with every default filled
//! in, leaving out what does not change a trial (`optimize.budget`) and the files' paths, and
//! (b) the bytes of every data and signal file, named by file name (a folder stands for its
//! files). Moving the files keeps it; editing a byte, a setting or the seed changes it.

use crate::error::{Error, Result};
use crate::experiment::LoadedExperiment;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The run folder's record of what it searched (`fingerprint.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// The hash function (`sha256`).
    pub hash: String,
    /// Hash over everything below.
    pub fingerprint: String,
    /// The experiment's settings as hashed (TOML, defaults filled in, paths and budget left out).
    pub experiment: String,
    /// Hash of each data file's bytes, by kind and file name (`data/BTC.csv`, `signals/p.csv`).
    pub files: BTreeMap<String, String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn file_hash(p: &Path) -> Result<String> {
    let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

impl Fingerprint {
    /// The fingerprint of a search over the data at `paths`.
    pub fn of(le: &LoadedExperiment, paths: &[PathBuf]) -> Result<Fingerprint> {
        let mut e = le.exp.clone();
        e.data.path = None;
        e.data.paths.clear();
        let signal_paths: Vec<PathBuf> = e.signals.files.iter().map(|f| le.resolve(&f.path)).collect();
        for f in e.signals.files.iter_mut() {
            f.path = PathBuf::new();
        }
        if let Some(o) = e.optimize.as_mut() {
            o.budget = 0;
        }
        let experiment = e.to_toml();
        let mut files = BTreeMap::new();
        let name = |p: &Path| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned());
        for p in crate::data::expand_paths(paths, le.exp.data.timeframe)? {
            files.insert(format!("data/{}", name(&p)), file_hash(&p)?);
        }
        for p in &signal_paths {
            files.insert(format!("signals/{}", name(p)), file_hash(p)?);
        }
        let mut h = Sha256::new();
        h.update(experiment.as_bytes());
        for (k, v) in &files {
            h.update([0u8]);
            h.update(k.as_bytes());
            h.update([0u8]);
            h.update(v.as_bytes());
        }
        Ok(Fingerprint { hash: "sha256".into(), fingerprint: hex(&h.finalize()), experiment, files })
    }

    /// Write `dir/fingerprint.json` (through a temporary file, then renamed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        crate::data::write_atomic(&dir.join("fingerprint.json"), (json + "\n").as_bytes())
    }

    /// Check that `dir` was made by a search with this fingerprint: an error naming what
    /// changed (settings by key, files by name) when not.
    pub fn check(&self, dir: &Path) -> Result<()> {
        let path = dir.join("fingerprint.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::data(&path, None, "no-fingerprint", format!("cannot resume a run that does not record what it searched ({e})"))
        })?;
        let old: Fingerprint = serde_json::from_str(&text).map_err(|e| Error::data(&path, None, "bad-fingerprint", e.to_string()))?;
        if old.fingerprint == self.fingerprint {
            return Ok(());
        }
        let mut changed = Vec::new();
        let (a, b) = (flatten(&old.experiment), flatten(&self.experiment));
        for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
            if a.get(k) != b.get(k) {
                changed.push(format!(
                    "{k} ({} -> {})",
                    a.get(k).map_or("absent", String::as_str),
                    b.get(k).map_or("absent", String::as_str)
                ));
            }
        }
        for k in old.files.keys().chain(self.files.keys().filter(|k| !old.files.contains_key(*k))) {
            match (old.files.get(k), self.files.get(k)) {
                (Some(_), None) => changed.push(format!("{k} (gone)")),
                (None, Some(_)) => changed.push(format!("{k} (new)")),
                (x, y) if x != y => changed.push(format!("{k} (contents)")),
                _ => {}
            }
        }
        if changed.is_empty() {
            changed.push("the fingerprint itself".into());
        }
        Err(Error::data(
            &path,
            None,
            "different-search",
            format!(
                "the run being resumed searched something else; changed: {}. Start a new run (without --resume) instead",
                changed.join(", ")
            ),
        ))
    }
}

/// Every leaf of a TOML document by its dotted path, as text.
fn flatten(text: &str) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, x) in t {
                    walk(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, x, out);
                }
            }
            toml::Value::Array(a) if a.iter().any(|x| x.is_table()) => {
                for (i, x) in a.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), x, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(v) = text.parse::<toml::Value>() {
        walk("", &v, &mut out);
    }
    out
}
