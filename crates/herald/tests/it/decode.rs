//! `herald decode`: exact JSON lines, streaming, files and errors.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use crate::herald;

#[test]
fn prints_one_exact_json_line_per_event_from_a_file() {
    let dir = std::env::temp_dir().join(format!("herald-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("capture.txt");
    std::fs::write(
        &path,
        "\u{feff}: hi\r\nid: 1\r\nevent: add\r\ndata: a\r\ndata: é\r\n\r\ndata: b\n\nid\ndata: c\n\ndata: unterminated\n",
    )
    .unwrap();
    let out = herald().arg("decode").arg(&path).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        concat!(
            "{\"type\": \"add\", \"data\": \"a\\né\", \"last_event_id\": \"1\"}\n",
            "{\"type\": \"message\", \"data\": \"b\", \"last_event_id\": \"1\"}\n",
            "{\"type\": \"message\", \"data\": \"c\", \"last_event_id\": \"\"}\n",
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn streams_each_event_before_the_input_ends() {
    let mut child = herald()
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());

    // The first event must come out while stdin is still open.
    stdin.write_all(b"data: first\n\n").unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        tx.send(line).unwrap();
        stdout
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the event is printed before the input ends");
    assert_eq!(
        first,
        "{\"type\": \"message\", \"data\": \"first\", \"last_event_id\": \"\"}\n"
    );

    stdin.write_all(b"data: second\n\n").unwrap();
    drop(stdin);
    let mut stdout = reader.join().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(
        rest,
        "{\"type\": \"message\", \"data\": \"second\", \"last_event_id\": \"\"}\n"
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_missing_file_is_a_one_line_error() {
    let out = herald()
        .args(["decode", "/nonexistent/capture"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("herald: cannot open /nonexistent/capture"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn help_documents_the_output_form() {
    let out = herald().args(["decode", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains(r#"{"type": "message", "data": "hello", "last_event_id": "42"}"#));
}
