//! `herald publish` through a real `herald serve`: `--lines` end to end to
//! `herald tail`, data from a file and standard input, and the errors a
//! user meets first.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::herald;
use crate::tail::{json_line, output_within, unused_port, Hub};

/// `herald publish --hub HUB ARGS…` with no token from the environment.
fn publish(hub: &Hub) -> std::process::Command {
    let mut command = herald();
    command
        .args(["publish", "--hub", &hub.url])
        .env_remove("HERALD_TOKEN");
    command
}

#[test]
fn lines_arrive_at_tail_exactly_and_in_order() {
    const LINES: usize = 2_000;
    let hub = Hub::start();
    let topic = "logs/app";
    // Replaying from the start of history makes the test independent of
    // when the subscription is set up relative to the first publish: the
    // hub's history-to-live seam has no gap and no duplicate.
    let tail = hub
        .tail()
        .args(["--topic", topic, "--json", "--last-event-id", "earliest"])
        .args(["--max-events", &LINES.to_string(), "--timeout", "40"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut publisher = publish(&hub)
        .args([topic, "--lines", "--data"])
        .arg(&hub.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = (0..LINES)
        .map(|i| match i % 4 {
            0 => format!("{i} GET /index.html 200"),
            1 => format!("{i} \"quoted\" \\ back\tslash é"),
            2 => format!("{i} crlf line"),
            _ => format!("{i}: {}", "x".repeat(i % 100)),
        })
        .collect();
    let mut stdin = publisher.stdin.take().unwrap();
    let input = lines.clone();
    // Written in uneven chunks with pauses, as a live log arrives.
    let writer = std::thread::spawn(move || {
        for (i, line) in input.iter().enumerate() {
            let end = if i % 4 == 2 { "\r\n" } else { "\n" };
            stdin.write_all(line.as_bytes()).unwrap();
            stdin.write_all(end.as_bytes()).unwrap();
            if i % 500 == 499 {
                stdin.flush().unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let started = Instant::now();
    writer.join().unwrap();
    let published = output_within(publisher, Duration::from_secs(40));
    let elapsed = started.elapsed();
    assert!(published.status.success(), "{published:?}");
    let ids: Vec<String> = String::from_utf8(published.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), LINES);
    eprintln!(
        "published {LINES} lines in {elapsed:?} ({:.0}/s, debug build)",
        LINES as f64 / elapsed.as_secs_f64()
    );

    let tailed = output_within(tail, Duration::from_secs(40));
    assert_eq!(tailed.status.code(), Some(0), "{tailed:?}");
    let expected: String = lines
        .iter()
        .zip(&ids)
        .map(|(line, id)| json_line("message", line, id))
        .collect();
    let got = String::from_utf8(tailed.stdout).unwrap();
    if got != expected {
        let first_difference = got.lines().zip(expected.lines()).position(|(a, b)| a != b);
        panic!(
            "tail's output differs from the published lines (first at line {first_difference:?}; \
             got {} lines, expected {LINES})",
            got.lines().count()
        );
    }
}

#[test]
fn data_comes_from_the_argument_a_file_or_standard_input() {
    let hub = Hub::start();
    let file = hub.dir.join("event.json");
    std::fs::write(&file, "{\"from\": \"file\"}\n").unwrap();
    let out = publish(&hub)
        .args(["t", "--file"])
        .arg(&file)
        .arg("--data")
        .arg(&hub.dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let file_id = String::from_utf8(out.stdout).unwrap().trim_end().to_owned();

    let mut child = publish(&hub)
        .args(["t", "--type", "piped", "--token", &hub.token])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"two\nlines\n")
        .unwrap();
    let out = output_within(child, Duration::from_secs(20));
    assert!(out.status.success(), "{out:?}");
    let stdin_id = String::from_utf8(out.stdout).unwrap().trim_end().to_owned();

    let out = hub
        .tail()
        .args([
            "--topic",
            "t",
            "--json",
            "--last-event-id",
            "earliest",
            "-n",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            json_line("message", "{\"from\": \"file\"}", &file_id).trim_end(),
            json_line("piped", "two\nlines", &stdin_id).trim_end(),
        ]
    );
}

#[test]
fn without_a_token_the_hub_refuses_with_401_and_says_what_to_do() {
    let hub = Hub::start();
    // A directory with no herald-data/ in it, and no token anywhere.
    let empty = hub.dir.join("elsewhere");
    std::fs::create_dir_all(&empty).unwrap();
    let out = publish(&hub)
        .args(["t", "data"])
        .current_dir(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("herald: 401 Unauthorized: an access token is required (no token: "),
        "{stderr}"
    );
    assert!(stderr.contains("--token"), "{stderr}");
}

#[test]
fn a_token_the_hub_does_not_trust_is_refused_with_401() {
    let hub = Hub::start();
    let out = publish(&hub)
        .args(["t", "data", "--token", "not.a.token"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("herald: 401 Unauthorized: the access token is not valid (the token"),
        "{stderr}"
    );
}

#[test]
fn a_hub_that_is_not_running_is_named() {
    let url = format!("http://127.0.0.1:{}/.well-known/mercure", unused_port());
    let out = herald()
        .args(["publish", "--hub", &url, "--token", "x", "t", "data"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!(
            "herald: cannot reach the hub at {url}: is `herald serve` running?"
        )),
        "{stderr}"
    );
}

#[test]
fn the_hub_and_its_token_are_found_through_its_data_directory() {
    let hub = Hub::start();
    let out = hub
        .by_data_dir("publish")
        .args(["found", "no URL given"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8(out.stdout).unwrap().trim_end().to_owned();
    let out = hub
        .tail()
        .args(["--topic", "found", "--json", "--last-event-id", "earliest"])
        .args(["-n", "1", "--timeout", "20"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        json_line("message", "no URL given", &id)
    );
}

#[test]
fn a_crashed_hubs_record_is_named_when_nothing_answers() {
    let mut hub = Hub::start();
    hub.stop("-KILL");
    let out = hub
        .by_data_dir("publish")
        .args(["t", "data"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!(
            "herald: the hub recorded in {} does not answer at {}: it probably stopped without \
             removing that file (a crash, or kill -9); start it again with `herald serve \
             --data {}`, or give --hub URL (",
            hub.dir.join("hub.url").display(),
            hub.url,
            hub.dir.display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_data_directory_no_hub_uses_is_named() {
    let hub = Hub::start();
    let unused = hub.dir.join("not-a-hub");
    std::fs::create_dir_all(&unused).unwrap();
    let out = herald()
        .args(["publish", "t", "data", "--data"])
        .arg(&unused)
        .env_remove("HERALD_HUB")
        .env_remove("HERALD_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "herald: no hub is running with the data directory {dir} ({dir}/hub.url does not \
             exist): start one with `herald serve --data {dir}`, or give --hub URL",
            dir = unused.display()
        )
    );
}

#[test]
fn lines_stop_at_the_first_refusal_and_name_the_line() {
    let hub = Hub::start();
    let mut child = publish(&hub)
        .args(["t", "--lines", "--type", "mercure", "--token", &hub.token])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a\nb\n").unwrap();
    let out = output_within(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    // `mercure` is the hub's reserved event type. The streaming publish's
    // answer has begun (200) when an event is refused, so the reason is
    // the hub's words, not a status.
    assert!(
        stderr.starts_with("herald: line 1 and after not published: the hub stopped the stream: ")
            && stderr.contains("reserved"),
        "{stderr}"
    );
}
