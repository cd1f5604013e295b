//! The playbook directory: which playbooks it holds, and where a
//! playbook a model names really is. And the inventory's groups.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::AnsibleError;

/// Playbooks listed at most.
const MAX_PLAYBOOKS: usize = 200;
/// A playbook larger than this is listed without its plays.
const MAX_PLAYBOOK_BYTES: u64 = 1024 * 1024;

/// One playbook of the playbook directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybookInfo {
    /// The file name, relative to the playbook directory.
    pub file: String,
    pub plays: Vec<PlayInfo>,
    /// Why the plays could not be read.
    pub problem: Option<String>,
}

/// One entry of a playbook: a play, or an imported playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayInfo {
    Play { name: Option<String>, hosts: String },
    Import { playbook: String },
}

impl PlaybookInfo {
    pub fn to_json(&self) -> Value {
        let plays: Vec<Value> = self
            .plays
            .iter()
            .map(|p| match p {
                PlayInfo::Play { name, hosts } => serde_json::json!({"name": name, "hosts": hosts}),
                PlayInfo::Import { playbook } => serde_json::json!({"import_playbook": playbook}),
            })
            .collect();
        let mut v = serde_json::json!({"playbook": self.file, "plays": plays});
        if let Some(problem) = &self.problem {
            v["problem"] = Value::String(problem.clone());
        }
        v
    }
}

/// The `*.yml` and `*.yaml` files directly in `dir` (roles, group_vars and
/// other subdirectories hold files that are not playbooks), with their
/// plays. Files that hold no play are left out.
pub(crate) async fn list(dir: &Path) -> Result<Vec<PlaybookInfo>, AnsibleError> {
    let dir_error = |source| AnsibleError::PlaybookDir { path: dir.to_path_buf(), source };
    let mut entries = tokio::fs::read_dir(dir).await.map_err(dir_error)?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(dir_error)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = tokio::fs::metadata(entry.path()).await.map(|m| m.is_file()).unwrap_or(false);
        if is_file && has_playbook_extension(&name) && !name.starts_with('.') {
            files.push((name, entry.path()));
        }
    }
    files.sort();
    let mut out = Vec::new();
    for (file, path) in files.into_iter().take(MAX_PLAYBOOKS) {
        let info = match read_plays(&path).await {
            Ok(plays) if plays.is_empty() => continue,
            Ok(plays) => PlaybookInfo { file, plays, problem: None },
            Err(problem) => PlaybookInfo { file, plays: Vec::new(), problem: Some(problem) },
        };
        out.push(info);
    }
    Ok(out)
}

async fn read_plays(path: &Path) -> Result<Vec<PlayInfo>, String> {
    let size = tokio::fs::metadata(path).await.map_err(|e| format!("cannot be read: {e}"))?.len();
    if size > MAX_PLAYBOOK_BYTES {
        return Err(format!("{size} bytes; too large to list its plays"));
    }
    let text = tokio::fs::read_to_string(path).await.map_err(|e| format!("cannot be read: {e}"))?;
    plays_of(&text)
}

/// The plays of a playbook's text: a YAML list whose entries have `hosts`
/// (a play) or `import_playbook`. Anything else is not a playbook.
pub(crate) fn plays_of(text: &str) -> Result<Vec<PlayInfo>, String> {
    let value: Value = yaml_serde::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let Value::Array(entries) = value else { return Ok(Vec::new()) };
    let mut plays = Vec::new();
    for entry in entries {
        let Value::Object(map) = entry else { continue };
        let import = map.get("import_playbook").or_else(|| map.get("ansible.builtin.import_playbook"));
        if let Some(import) = import {
            plays.push(PlayInfo::Import { playbook: scalar(import) });
        } else if let Some(hosts) = map.get("hosts") {
            let hosts = match hosts {
                Value::Array(list) => list.iter().map(scalar).collect::<Vec<_>>().join(","),
                other => scalar(other),
            };
            plays.push(PlayInfo::Play { name: map.get("name").map(scalar), hosts });
        }
    }
    Ok(plays)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn has_playbook_extension(name: &str) -> bool {
    name.ends_with(".yml") || name.ends_with(".yaml")
}

/// Where the playbook `name` is: inside `dir` (canonical), as a regular
/// `.yml`/`.yaml` file. Returns its canonical path and its path relative
/// to `dir`. `..`, absolute paths outside `dir` and symlinks that lead out
/// are refused: the directory is what a person chose to let Steward run.
pub(crate) fn resolve(dir: &Path, name: &str) -> Result<(PathBuf, String), AnsibleError> {
    let bad = |m: String| AnsibleError::BadRequest(m);
    let name = name.trim();
    if name.is_empty() || name.contains('\0') {
        return Err(bad(
            "`playbook` must name a playbook file, e.g. site.yml (ansible_list_playbooks lists them)".into()
        ));
    }
    let path = Path::new(name);
    if !path.is_absolute() {
        for component in path.components() {
            match component {
                Component::Normal(_) | Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(bad(format!(
                        "`{name}` leaves the playbook directory; name a playbook inside it, e.g. site.yml \
(ansible_list_playbooks lists them)"
                    )))
                }
            }
        }
    }
    if !has_playbook_extension(name) {
        return Err(bad(format!("`{name}` is not a playbook: playbooks are .yml or .yaml files")));
    }
    let joined = dir.join(path);
    let canonical = match std::fs::canonicalize(&joined) {
        Ok(c) => c,
        Err(_) if path.is_absolute() && !path.starts_with(dir) => {
            return Err(bad(format!("`{name}` is outside the playbook directory {}", dir.display())))
        }
        Err(_) => {
            return Err(bad(format!(
                "there is no playbook `{name}` in {}; ansible_list_playbooks lists the playbooks",
                dir.display()
            )))
        }
    };
    let Ok(relative) = canonical.strip_prefix(dir) else {
        return Err(bad(format!(
            "`{name}` is outside the playbook directory {} (or a link that leads out of it); name a playbook inside it",
            dir.display()
        )));
    };
    if !canonical.is_file() {
        return Err(bad(format!("`{name}` is not a file")));
    }
    let relative = relative.to_string_lossy().into_owned();
    Ok((canonical, relative))
}

/// The inventory as groups of hosts, from `ansible-inventory --list`.
/// Host variables (`_meta.hostvars`) and group variables are dropped: they
/// can hold passwords and keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryGroups {
    pub groups: BTreeMap<String, Group>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub hosts: Vec<String>,
    pub children: Vec<String>,
}

impl InventoryGroups {
    pub(crate) fn parse(listing: &str) -> Result<InventoryGroups, String> {
        let value: Value =
            serde_json::from_str(listing).map_err(|e| format!("ansible-inventory printed no JSON inventory: {e}"))?;
        let Value::Object(map) = value else { return Err("ansible-inventory printed no JSON object".into()) };
        let names = |v: Option<&Value>| -> Vec<String> {
            let mut names: Vec<String> = v
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            names.sort();
            names
        };
        let groups = map
            .iter()
            .filter(|(name, _)| name.as_str() != "_meta")
            .map(|(name, group)| {
                (name.clone(), Group { hosts: names(group.get("hosts")), children: names(group.get("children")) })
            })
            .collect();
        Ok(InventoryGroups { groups })
    }

    /// Every host, once, sorted.
    pub fn hosts(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self.groups.values().flat_map(|g| g.hosts.iter()).collect();
        all.into_iter().cloned().collect()
    }

    pub fn to_json(&self) -> Value {
        let groups: serde_json::Map<String, Value> = self
            .groups
            .iter()
            .map(|(name, g)| {
                let mut v = serde_json::Map::new();
                if !g.hosts.is_empty() {
                    v.insert("hosts".into(), serde_json::json!(g.hosts));
                }
                if !g.children.is_empty() {
                    v.insert("children".into(), serde_json::json!(g.children));
                }
                (name.clone(), Value::Object(v))
            })
            .collect();
        serde_json::json!({"hosts": self.hosts(), "groups": groups})
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn plays_and_imports_are_read_and_other_yaml_is_not_a_playbook() {
        let plays =
            plays_of("- name: Web\n  hosts: [web, db]\n  tasks: []\n- import_playbook: other.yml\n- hosts: all\n")
                .unwrap();
        assert_eq!(
            plays,
            [
                PlayInfo::Play { name: Some("Web".into()), hosts: "web,db".into() },
                PlayInfo::Import { playbook: "other.yml".into() },
                PlayInfo::Play { name: None, hosts: "all".into() },
            ]
        );
        assert!(plays_of("collections:\n  - community.general\n").unwrap().is_empty());
        assert!(plays_of("- src: geerlingguy.docker\n").unwrap().is_empty());
        assert!(plays_of("- hosts: [unclosed\n").unwrap_err().starts_with("not valid YAML"));
    }

    #[test]
    fn playbooks_outside_the_directory_are_refused() {
        let dir = std::env::temp_dir().join(format!("steward-pb-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        std::fs::write(dir.join("site.yml"), "- hosts: all\n").unwrap();
        std::fs::write(dir.join("sub/deep.yaml"), "- hosts: all\n").unwrap();
        let outside = dir.with_extension("outside.yml");
        std::fs::write(&outside, "- hosts: all\n").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link.yml")).unwrap();

        assert_eq!(resolve(&dir, "site.yml").unwrap(), (dir.join("site.yml"), "site.yml".to_string()));
        assert_eq!(resolve(&dir, "./sub/deep.yaml").unwrap().1, "sub/deep.yaml");
        let absolute = dir.join("site.yml");
        assert_eq!(resolve(&dir, absolute.to_str().unwrap()).unwrap().1, "site.yml");
        for (name, expected) in [
            ("../x.yml", "leaves the playbook directory"),
            ("sub/../../x.yml", "leaves the playbook directory"),
            (outside.to_str().unwrap(), "outside the playbook directory"),
            ("/etc/passwd.yml", "outside the playbook directory"),
            ("link.yml", "outside the playbook directory"),
            ("missing.yml", "there is no playbook `missing.yml`"),
            ("site.txt", "not a playbook"),
            ("", "must name a playbook"),
        ] {
            match resolve(&dir, name) {
                Err(AnsibleError::BadRequest(m)) => assert!(m.contains(expected), "{name}: {m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_file(&outside).unwrap();
    }

    #[test]
    fn the_inventory_keeps_groups_and_hosts_and_drops_variables() {
        let listing = r#"{"_meta": {"hostvars": {"web1": {"ansible_password": "hunter2"}}},
            "all": {"children": ["ungrouped", "web"]}, "web": {"hosts": ["web2", "web1"], "vars": {"token": "t"}}}"#;
        let inv = InventoryGroups::parse(listing).unwrap();
        assert_eq!(inv.hosts(), ["web1", "web2"]);
        let json = inv.to_json().to_string();
        assert!(!json.contains("hunter2") && !json.contains("\"t\""), "{json}");
        assert_eq!(inv.groups["all"].children, ["ungrouped", "web"]);
    }
}
