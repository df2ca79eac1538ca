//! The overview's charts: runs per minute by status, over the last hour
//! and the last day, drawn as SVG on the server.
//!
//! A day of history can be a million runs, too many to count at every
//! page view, or even at one. The counts per minute are therefore kept per
//! session ([`ChartCache`]): each view counts the minutes since the last
//! one (a minute that has passed gains no more finished runs; a margin of
//! [`SETTLE_MINUTES`] covers a run whose `finished_at`, its transaction's
//! start, lies a little before its commit), and counts the day back from
//! the last hour in steps sized to take about [`BACKFILL_BUDGET_MS`]. The
//! first view shows the last hour whole and the day as far back as it has
//! counted, and says how far that is.

use maud::{html, Markup};
use std::collections::BTreeMap;

/// Minutes at the end of the cached span that are counted again each time.
pub const SETTLE_MINUTES: i64 = 2;
/// The span the cache keeps: a day.
pub const DAY_MINUTES: i64 = 24 * 60;
/// What counting further back may cost one view, roughly.
pub const BACKFILL_BUDGET_MS: f64 = 100.0;
/// The first step back, in minutes, before its cost is known.
const FIRST_STEP: i64 = 60;

/// Runs that finished in one minute, by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub succeeded: i64,
    pub failed: i64,
    /// Cancelled or skipped.
    pub other: i64,
}

impl Counts {
    pub fn add(&mut self, status: &str, n: i64) {
        match status {
            "succeeded" => self.succeeded += n,
            "failed" | "timed_out" | "crashed" => self.failed += n,
            _ => self.other += n,
        }
    }

    fn total(&self) -> i64 {
        self.succeeded + self.failed + self.other
    }

    fn plus(mut self, o: &Counts) -> Counts {
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.other += o.other;
        self
    }
}

/// A session's counts per minute (minutes since the epoch) over the last day.
#[derive(Debug, Default)]
pub struct ChartCache {
    minutes: BTreeMap<i64, Counts>,
    /// Minutes before this one are counted for good.
    settled_before: i64,
    /// The database's minute at the last update.
    now: i64,
    /// The oldest minute counted (0: nothing counted yet).
    counted_from: i64,
    /// Minutes the next step back covers (0: [`FIRST_STEP`]).
    step: i64,
}

impl ChartCache {
    /// The minutes to count for a view when the database's clock says
    /// `now_minute`: from the returned minute to now. The first view
    /// counts the last hour.
    pub fn count_from(&self, now_minute: i64) -> i64 {
        if self.counted_from == 0 {
            now_minute - 59
        } else {
            (now_minute - DAY_MINUTES + 1).max(self.settled_before)
        }
    }

    /// Take the fresh counts of minutes `from..` (`rows`: minute, status,
    /// runs) and forget minutes older than a day.
    pub fn update(&mut self, now_minute: i64, from: i64, rows: &[(i64, String, i64)]) {
        self.minutes
            .retain(|m, _| *m < from && *m > now_minute - DAY_MINUTES);
        for (m, status, n) in rows {
            self.minutes.entry(*m).or_default().add(status, *n);
        }
        self.settled_before = now_minute - SETTLE_MINUTES;
        self.now = now_minute;
        if self.counted_from == 0 || self.counted_from > from {
            self.counted_from = from;
        }
    }

    /// The next minutes to count back, `lo..hi`, while the day is not
    /// counted whole.
    pub fn step_back(&self, now_minute: i64) -> Option<(i64, i64)> {
        let day_start = now_minute - DAY_MINUTES + 1;
        let hi = self.counted_from;
        if hi == 0 || hi <= day_start {
            return None;
        }
        let step = if self.step > 0 { self.step } else { FIRST_STEP };
        Some(((hi - step).max(day_start), hi))
    }

    /// Take the counts of the minutes `lo..hi` counted back (which took
    /// `ms`), and size the next step to the budget.
    pub fn stepped_back(&mut self, lo: i64, hi: i64, rows: &[(i64, String, i64)], ms: f64) {
        for (m, status, n) in rows {
            self.minutes.entry(*m).or_default().add(status, *n);
        }
        self.counted_from = lo;
        let scaled = ((hi - lo) as f64 * BACKFILL_BUDGET_MS / ms.max(1.0)) as i64;
        self.step = scaled.clamp(15, DAY_MINUTES);
    }

    /// Minutes of the last day not counted yet.
    pub fn uncounted(&self, now_minute: i64) -> i64 {
        if self.counted_from == 0 {
            DAY_MINUTES
        } else {
            (self.counted_from - (now_minute - DAY_MINUTES + 1)).max(0)
        }
    }

    /// Minutes of the day not counted yet, as of the last update.
    pub fn pending(&self) -> i64 {
        self.uncounted(self.now)
    }

    /// `bars` bars of `width` minutes each, the last ending with
    /// `now_minute`, oldest first.
    pub fn bars(&self, now_minute: i64, bars: i64, width: i64) -> Vec<Counts> {
        let first = now_minute - bars * width + 1;
        let mut out = vec![Counts::default(); bars as usize];
        for (m, c) in self.minutes.range(first..=now_minute) {
            let i = ((m - first) / width) as usize;
            if let Some(slot) = out.get_mut(i) {
                *slot = slot.plus(c);
            }
        }
        out
    }
}

/// A round number at or above `max` for the top of the axis (1, 2 or 5
/// times a power of ten), so its label reads well.
pub fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= max {
            return m * p;
        }
    }
    10.0 * p
}

/// Height in pixels of a value on an axis from 0 to `top` drawn `h` high.
pub fn scale(v: f64, top: f64, h: f64) -> f64 {
    if top <= 0.0 {
        0.0
    } else {
        (v / top * h).clamp(0.0, h)
    }
}

const W: f64 = 720.0;
const H: f64 = 150.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 18.0;

/// Stacked bars of runs per minute (`per`: minutes a bar covers, whose
/// counts are divided by it), failures at the bottom where the eye lands.
/// `labels`: the x-axis text at the left and right ends.
pub fn svg(title: &str, bars: &[Counts], per: i64, labels: (&str, &str)) -> Markup {
    let per = per.max(1) as f64;
    let rates: Vec<(f64, f64, f64)> = bars
        .iter()
        .map(|c| {
            (
                c.failed as f64 / per,
                c.other as f64 / per,
                c.succeeded as f64 / per,
            )
        })
        .collect();
    let max = rates.iter().map(|(a, b, c)| a + b + c).fold(0.0, f64::max);
    let top = nice_ceiling(max);
    let plot_w = W - LEFT;
    let plot_h = H - BOTTOM;
    let bw = plot_w / bars.len().max(1) as f64;
    let total: i64 = bars.iter().map(Counts::total).sum();
    let failed: i64 = bars.iter().map(|c| c.failed).sum();
    html! {
        figure.chart {
            figcaption { (title) " — " (total) " runs, " (failed) " failed" }
            svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(title) xmlns="http://www.w3.org/2000/svg" {
                line.axis x1=(LEFT) y1="0" x2=(LEFT) y2=(plot_h) {}
                line.axis x1=(LEFT) y1=(plot_h) x2=(W) y2=(plot_h) {}
                line.grid x1=(LEFT) y1="0.5" x2=(W) y2="0.5" {}
                text.label x=(LEFT - 4.0) y="10" text-anchor="end" { (fmt_rate(top)) }
                text.label x=(LEFT - 4.0) y=(plot_h) text-anchor="end" { "0" }
                text.label x=(LEFT) y=(H - 4.0) { (labels.0) }
                text.label x=(W) y=(H - 4.0) text-anchor="end" { (labels.1) }
                @for (i, (f, o, s)) in rates.iter().enumerate() {
                    @let x = LEFT + i as f64 * bw;
                    @let hf = scale(*f, top, plot_h);
                    @let ho = scale(*o, top, plot_h);
                    @let hs = scale(*s, top, plot_h - hf - ho);
                    @if hf > 0.0 { rect.failed x=(r1(x)) y=(r1(plot_h - hf)) width=(r1(bw * 0.85)) height=(r1(hf)) {} }
                    @if ho > 0.0 { rect.other x=(r1(x)) y=(r1(plot_h - hf - ho)) width=(r1(bw * 0.85)) height=(r1(ho)) {} }
                    @if hs > 0.0 { rect.succeeded x=(r1(x)) y=(r1(plot_h - hf - ho - hs)) width=(r1(bw * 0.85)) height=(r1(hs)) {} }
                }
            }
        }
    }
}

/// One decimal: enough for a pixel, and a smaller page.
fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn fmt_rate(v: f64) -> String {
    if v >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}/min")
    } else {
        format!("{v}/min")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_top_is_a_round_number_at_or_above_the_max() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1.2), 2.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(750.0), 1000.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(scale(5.0, 10.0, 100.0), 50.0);
        assert_eq!(scale(20.0, 10.0, 100.0), 100.0, "clamped to the plot");
        assert_eq!(scale(5.0, 0.0, 100.0), 0.0);
    }

    #[test]
    fn the_cache_counts_new_minutes_and_the_day_back_in_steps() {
        let mut c = ChartCache::default();
        let now = 1_000_000;
        assert_eq!(c.count_from(now), now - 59, "first: the last hour");
        assert_eq!(c.step_back(now), None, "nothing counted yet");
        c.update(
            now,
            now - 59,
            &[
                (now, "succeeded".into(), 3),
                (now, "failed".into(), 1),
                (now - 1, "timed_out".into(), 2),
                (now - 5, "cancelled".into(), 4),
            ],
        );
        let b = c.bars(now, 2, 5);
        assert_eq!(
            b[1],
            Counts {
                succeeded: 3,
                failed: 3,
                other: 0
            }
        );
        assert_eq!(b[0].other, 4);
        assert_eq!(c.uncounted(now), DAY_MINUTES - 60);
        // Back: an hour first; a step that took twice the budget halves
        // the next.
        assert_eq!(c.step_back(now), Some((now - 119, now - 59)));
        c.stepped_back(
            now - 119,
            now - 59,
            &[(now - 100, "succeeded".into(), 7)],
            2.0 * BACKFILL_BUDGET_MS,
        );
        assert_eq!(c.step_back(now), Some((now - 149, now - 119)));
        assert_eq!(c.bars(now, 1, 120)[0].succeeded, 10);
        // Cheap steps grow, up to the start of the day.
        c.stepped_back(now - 149, now - 119, &[], BACKFILL_BUDGET_MS / 40.0);
        assert_eq!(c.step_back(now), Some((now - 1349, now - 149)));
        c.stepped_back(now - 1349, now - 149, &[], 1.0);
        assert_eq!(c.step_back(now), Some((now - DAY_MINUTES + 1, now - 1349)));
        assert_eq!(c.pending(), 90, "minutes now-1439 ..= now-1350");
        c.stepped_back(now - DAY_MINUTES + 1, now - 1349, &[], 1.0);
        assert_eq!(c.pending(), 0);
        assert_eq!(c.step_back(now), None, "the day is counted");
        assert_eq!(c.uncounted(now), 0);
        // A minute later: the unsettled minutes are replaced, not added to.
        let from = c.count_from(now + 1);
        assert_eq!(from, now - SETTLE_MINUTES);
        c.update(now + 1, from, &[(now, "succeeded".into(), 5)]);
        let b = c.bars(now + 1, 1, 10);
        assert_eq!(b[0].succeeded, 5);
        assert_eq!(b[0].failed, 0, "minute now-1 was counted again and had none");
        assert_eq!(b[0].other, 4, "settled minutes stay");
        assert_eq!(c.step_back(now + 1), None, "the day slid by a minute, counted");
    }

    #[test]
    fn the_svg_scales_bars_to_the_plot() {
        let bars = vec![
            Counts {
                succeeded: 10,
                failed: 0,
                other: 0,
            },
            Counts {
                succeeded: 0,
                failed: 5,
                other: 0,
            },
        ];
        let s = svg("last hour", &bars, 1, ("-1h", "now")).into_string();
        // The top is 10/min; a full bar is the plot's height.
        assert!(s.contains(">10/min<"), "{s}");
        assert!(
            s.contains(r#"class="succeeded" x="56" y="0" width="282.2" height="132""#),
            "{s}"
        );
        assert!(
            s.contains(r#"class="failed" x="388" y="66" width="282.2" height="66""#),
            "{s}"
        );
        assert!(s.contains("15 runs, 5 failed"), "{s}");
    }
}
