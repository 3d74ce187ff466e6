//! Results as Markdown tables, ready to paste into docs/benchmarks.md.

use std::fmt;
use std::time::Duration;

pub const MIB: f64 = 1024.0 * 1024.0;

pub struct Table {
    pub headers: Vec<&'static str>,
    pub row: Vec<String>,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<usize> = self
            .headers
            .iter()
            .zip(&self.row)
            .map(|(header, cell)| header.len().max(cell.len()))
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: &mut dyn Iterator<Item = String>| {
            for (cell, width) in cells.zip(&widths) {
                write!(f, "| {cell:>width$} ")?;
            }
            writeln!(f, "|")
        };
        line(f, &mut self.headers.iter().map(|h| h.to_string()))?;
        line(
            f,
            &mut widths.iter().map(|w| format!("{}:", "-".repeat(w - 1))),
        )?;
        line(f, &mut self.row.iter().cloned())
    }
}

pub fn per_s(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

pub fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    per_s(bytes, elapsed) / MIB
}

pub fn micros_as_ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_markdown_with_aligned_columns() {
        let table = Table {
            headers: vec!["phase", "records/s"],
            row: vec!["produce".to_owned(), "12".to_owned()],
        };
        assert_eq!(
            table.to_string(),
            "|   phase | records/s |\n\
             | ------: | --------: |\n\
             | produce |        12 |\n"
        );
    }

    #[test]
    fn rates() {
        assert_eq!(per_s(10, Duration::from_secs(2)), 5.0);
        assert_eq!(per_s(10, Duration::ZERO), 0.0);
        assert_eq!(mib_per_s(2 * 1024 * 1024, Duration::from_secs(1)), 2.0);
        assert_eq!(micros_as_ms(1500), "1.50");
    }
}
