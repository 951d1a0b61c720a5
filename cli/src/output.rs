//! Output helpers: JSON lines and aligned tables. Nothing secret ever reaches these.

use std::io::Write;

/// Prints `dpwrap: {file}: {message}` on stderr, without repeating the file when the message
/// already starts with it.
pub fn report(file: &str, message: &str) {
    if message.starts_with(file) {
        eprintln!("dpwrap: {message}");
    } else {
        eprintln!("dpwrap: {file}: {message}");
    }
}

/// Prints one JSON object per line.
pub fn json_line(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`dpwrap ... | head`) is not an error worth reporting.
    let _ = writeln!(out, "{value}");
}

/// A table printed with aligned columns.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: Vec<&'static str>) -> Table {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn print(&self) {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = std::io::stdout().lock();
        let line = |cells: Vec<&str>| -> String {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(cell);
                } else {
                    s.push_str(&format!("{cell:<w$}  "));
                }
            }
            s.trim_end().to_owned()
        };
        let _ = writeln!(out, "{}", line(self.header.clone()));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
        }
    }
}
