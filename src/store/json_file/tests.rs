//! The credentials file on a real filesystem: siblings kept, rollbacks, bytes that are
//! not strict JSON kept beside it, hostile files refused.

use std::os::unix::fs::PermissionsExt;

use rustix::fs::FileType;
use serde_json::json;

use super::*;
use crate::store::test_fs;
use crate::template::object;

fn file(dir: &Path) -> JsonFile {
    JsonFile::new(dir.join(".credentials.json"), "claudeAiOauth", 0o600, Lock::ClaudeCode)
}

#[test]
fn replace_keeps_siblings_and_rollback_undoes_it() {
    let d = tempfile::tempdir().unwrap();
    let f = file(d.path());
    let original = br#"{"mcpOAuth":{"srv":{"accessToken":"m"}},"claudeAiOauth":{"accessToken":""},"x":1}"#;
    std::fs::write(f.path(), original).unwrap();
    let before = f.read().unwrap();
    let ReplaceOutcome::Replaced(r) = f.replace(&object(json!({"accessToken": "new"})), &before).unwrap() else {
        panic!("unchanged file must be replaced")
    };
    let now: Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
    assert_eq!(now, json!({"mcpOAuth":{"srv":{"accessToken":"m"}},"claudeAiOauth":{"accessToken":"new"},"x":1}));
    assert_eq!(std::fs::metadata(f.path()).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(f.rollback(&r).unwrap());
    assert_eq!(std::fs::read(f.path()).unwrap(), original);
    assert!(!d.path().join(lock::WRITE_LOCK).exists());
}

#[test]
fn replace_refuses_when_the_object_changed_since_it_was_read() {
    let d = tempfile::tempdir().unwrap();
    let f = file(d.path());
    let login = |t: &str| {
        format!(
            r#"{{"claudeAiOauth":{{"accessToken":"{t}","refreshToken":"r{t}","expiresAt":5,"scopes":["user:inference"]}}}}"#
        )
    };
    std::fs::write(f.path(), login("a")).unwrap();
    let before = f.read().unwrap();
    std::fs::write(f.path(), login("b")).unwrap();
    let c = object(json!({"accessToken": "c", "refreshToken": "rc", "expiresAt": 5, "scopes": ["user:inference"]}));
    assert!(matches!(f.replace(&c, &before).unwrap(), ReplaceOutcome::Changed(_)));
    assert_eq!(std::fs::read_to_string(f.path()).unwrap(), login("b"));
}

#[test]
fn bytes_that_are_not_strict_json_are_kept_beside_the_file_and_merged_into() {
    let d = tempfile::tempdir().unwrap();
    let f = file(d.path());
    let login = object(json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 5, "scopes": ["user:inference"]}));
    let hand_edited = "\u{feff}{\"mcpOAuth\": {\"srv\": 1}, // a note\n \"claudeAiOauth\": {\"accessToken\": \"\"},}";
    std::fs::write(f.path(), hand_edited).unwrap();
    let before = f.read().unwrap();
    assert!(before.lenient && before.object().is_some(), "read leniently: {before:?}");
    let ReplaceOutcome::Replaced(r) = f.replace(&login, &before).unwrap() else { panic!() };
    let now: Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
    assert_eq!(now, json!({"mcpOAuth": {"srv": 1}, "claudeAiOauth": login}), "every other key merged");
    let kept = r.kept.expect("the original bytes were kept");
    assert_eq!(kept.parent(), Some(d.path()));
    assert!(kept.file_name().unwrap().to_string_lossy().starts_with(".credentials.json.claude-auth-sync.unparsed-"));
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), hand_edited);
    assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);

    // Garbage no reading recovers: replaced whole, its bytes kept all the same.
    std::fs::write(f.path(), b"\x00\x01 not json at all").unwrap();
    let before = f.read().unwrap();
    assert_eq!((before.state.clone(), before.lenient), (FileState::NotJson, false));
    let ReplaceOutcome::Replaced(r) = f.replace(&login, &before).unwrap() else { panic!() };
    assert_eq!(std::fs::read(r.kept.unwrap()).unwrap(), b"\x00\x01 not json at all");
    assert_eq!(f.read().unwrap().object(), Some(&login));
}

#[test]
fn a_restored_copy_blanked_meanwhile_is_rolled_back_but_a_logout_is_not() {
    let d = tempfile::tempdir().unwrap();
    let f = file(d.path());
    let mine = json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 5, "scopes": ["user:inference"]});
    std::fs::write(f.path(), json!({"claudeAiOauth": mine, "mcpOAuth": {}}).to_string()).unwrap();
    let before = f.read().unwrap();
    let vaults =
        object(json!({"accessToken": "v", "refreshToken": "rv", "expiresAt": 9, "scopes": ["user:inference"]}));
    let ReplaceOutcome::Replaced(r) = f.replace(&vaults, &before).unwrap() else { panic!() };
    // The CLI's refresh of the restored copy is refused: it blanks it, and saves a sibling.
    let blanked =
        json!({"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0}, "mcpOAuth": {"new": 1}});
    std::fs::write(f.path(), blanked.to_string()).unwrap();
    assert!(f.rollback(&r).unwrap());
    let now: Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
    assert_eq!(now, json!({"claudeAiOauth": mine, "mcpOAuth": {"new": 1}}));

    let ReplaceOutcome::Replaced(r) = f.replace(&vaults, &f.read().unwrap()).unwrap() else { panic!() };
    std::fs::remove_file(f.path()).unwrap();
    assert!(!f.rollback(&r).unwrap(), "a logout removed the file: nothing is put back");
    assert!(!f.path().exists());
}

#[test]
fn missing_file_and_directory_are_created_and_rolled_back_to_absent() {
    let d = tempfile::tempdir().unwrap();
    let f = file(&d.path().join("claude"));
    let before = f.read().unwrap();
    assert_eq!(before.state, FileState::Missing);
    let ReplaceOutcome::Replaced(r) = f.replace(&object(json!({"a": 1})), &before).unwrap() else { panic!() };
    assert_eq!(std::fs::metadata(d.path().join("claude")).unwrap().permissions().mode() & 0o777, 0o700);
    assert!(f.rollback(&r).unwrap());
    assert!(!f.path().exists());
}

#[test]
fn hostile_files_are_refused_without_writing() {
    let d = tempfile::tempdir().unwrap();
    let f = file(d.path());
    let (target, _) = test_fs::file_behind_link(d.path(), ".credentials.json");
    assert!(matches!(f.read(), Err(LocalError::Symlink(_))));
    assert!(matches!(
        f.replace(&Map::new(), &Snapshot::missing()),
        Err(LocalError::Symlink(_)) | Err(LocalError::Write(WriteError::Symlink { .. }))
    ));
    assert_eq!(std::fs::read(&target).unwrap(), test_fs::KEPT);
    std::fs::remove_file(f.path()).unwrap();

    rustix::fs::mknodat(rustix::fs::CWD, f.path(), FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
    assert!(matches!(f.read(), Err(LocalError::NotRegular(_))));
    std::fs::remove_file(f.path()).unwrap();

    std::fs::write(f.path(), br#"{"claudeAiOauth":"a string"}"#).unwrap();
    let err = f.read().unwrap_err();
    assert!(err.to_string().contains("claudeAiOauth is a string"), "{err}");

    std::fs::write(f.path(), b"{not json").unwrap();
    assert_eq!(f.read().unwrap().state, FileState::NotJson);

    std::fs::write(f.path(), "[".repeat(100_000)).unwrap();
    assert!(f.read().unwrap_err().to_string().contains("nested more than 128 levels"));

    std::fs::File::create(f.path()).unwrap().set_len(2 << 30).unwrap();
    assert!(matches!(f.read(), Err(LocalError::TooLarge { .. })));
}
