//! The devices list: rows from both services, filter, sort, marks and the cursor. A refresh
//! replaces rows in place, so none of these is lost when new data arrives.

use std::collections::{HashMap, HashSet};

use super::row_index::RowIndex;
use super::sort::{Key, SortColumn, sort_key};
use crate::fleet::filter::{self, Filter};
use crate::fleet::{Device, DeviceKey, Service};

/// The table's rows and its view, kept up to date by what changed rather than rebuilt: a
/// refresh of 100,000 devices arrives as 1,000 pages, and each page must cost the event loop
/// about what it holds, not the whole fleet.
#[derive(Debug, Default)]
pub struct Devices {
    rows: Vec<Device>,
    index: RowIndex,
    /// Every row, in sort order (a total order: ties go by row, so a search finds one place).
    order: Vec<usize>,
    /// Each row's position in `order`.
    order_pos: Vec<usize>,
    /// Each row: whether the filter lets it through.
    passes: Vec<bool>,
    /// Indices into `rows` of what the filter lets through, in sort order.
    view: Vec<usize>,
    pub cursor: usize,
    pub marks: HashSet<DeviceKey>,
    pub filter: String,
    parsed: Filter,
    pub sort: Option<SortColumn>,
    pub reverse: bool,
    /// Listings under way, by scope and service.
    pub loading: HashSet<(String, Service)>,
    /// The scopes in use, in the order they were named: the unsorted table's order.
    scope_order: Vec<String>,
    /// Until the operator moves, the cursor stays on the first row while rows arrive.
    moved: bool,
    /// Rows per service (Panorama, Snow), kept as rows change: every frame shows them.
    counts: [usize; 2],
    /// Epoch seconds as of the last tick: what `status:unreachable` is judged against, the
    /// same clock the table's UNREACHABLE is drawn with.
    now: u64,
    /// The rows in order of label (then row), every column's tie-break; built by the first
    /// sort after rows come, go or are renamed, and kept until then: a refresh renames
    /// nothing, so a sort after it compares no strings.
    label_order: Option<Vec<u32>>,
    /// Every row's filter text ([`filter::haystack`]) in one buffer, and each row's slice of
    /// it: a filter word is looked for in one contiguous scan per row. A row whose text
    /// changes gets a new slice at the end; the buffer is rebuilt once half of it is stale.
    hay: Vec<u8>,
    hay_at: Vec<(u32, u32)>,
    hay_stale: usize,
}

/// Row `i`'s slice of the filter text.
fn hay_of<'a>(hay: &'a [u8], at: &[(u32, u32)], i: usize) -> &'a [u8] {
    let (start, len) = at[i];
    &hay[start as usize..(start + len) as usize]
}

impl Devices {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every device, filtered or not.
    pub fn rows(&self) -> &[Device] {
        &self.rows
    }

    pub fn shown(&self) -> usize {
        self.view.len()
    }

    /// The shown row at view position `i`.
    pub fn row(&self, i: usize) -> Option<&Device> {
        self.view.get(i).map(|&r| &self.rows[r])
    }

    pub fn current(&self) -> Option<&Device> {
        self.row(self.cursor)
    }

    /// The scopes in use, in the order named: the unsorted table follows it.
    pub fn set_scope_order(&mut self, order: Vec<String>) {
        if self.scope_order != order {
            let at = self.current_row();
            self.scope_order = order;
            self.resort();
            self.review();
            self.place_cursor(at);
        }
    }

    /// Gives devices whose reads named no account their scope's, once it is known.
    pub fn fill_accounts(&mut self, accounts: &HashMap<String, String>) {
        let mut changed = false;
        for d in &mut self.rows {
            if d.account.is_none()
                && let Some(a) = accounts.get(d.scope.as_str())
            {
                d.account = Some(a.into());
                changed = true;
            }
        }
        if changed {
            let at = self.current_row();
            self.rebuild_hay();
            self.resort();
            self.refilter();
            self.place_cursor(at);
        }
    }

    pub fn get(&self, key: &DeviceKey) -> Option<&Device> {
        self.index.get(&self.rows, key).map(|i| &self.rows[i])
    }

    pub fn count(&self, service: Service) -> usize {
        self.counts[service as usize]
    }

    /// Adds new devices and merges news into known ones. The cost is the page's, plus one
    /// pass over the order when rows arrive or move: no re-filtering or re-sorting of the rest.
    pub fn upsert(&mut self, devices: Vec<Device>) {
        let at = self.current_row();
        let known = self.rows.len();
        let (mut added, mut changed) = (Vec::new(), Vec::new());
        for d in devices {
            match self.index.get(&self.rows, &d.key()) {
                Some(i) => {
                    if self.rows[i].label() != d.label() {
                        self.label_order = None;
                    }
                    self.rows[i].merge(d);
                    self.write_hay(i);
                    changed.push(i);
                }
                None => {
                    let i = self.rows.len();
                    self.label_order = None;
                    self.counts[d.service as usize] += 1;
                    self.rows.push(d);
                    self.index.insert(&self.rows, i);
                    self.write_hay(i);
                    self.passes.push(false);
                    self.order_pos.push(usize::MAX);
                    added.push(i);
                }
            }
        }
        // A row new in this page and repeated in it is new, not changed.
        changed.retain(|&i| i < known);
        changed.sort_unstable();
        changed.dedup();
        // A changed row that still sorts between its neighbours stays; if any does not, every
        // changed row is taken out and put back, since the unchanged ones are still in order.
        let misplaced = changed.iter().any(|&i| !self.in_place(i));
        let mut order_changed = !added.is_empty();
        if misplaced {
            let mut out = vec![false; self.rows.len()];
            for &i in &changed {
                out[i] = true;
            }
            self.order.retain(|&i| !out[i]);
            added.extend_from_slice(&changed);
            order_changed = true;
        }
        let mut view_changed = order_changed;
        // Only the rows this page touched are judged by the filter again.
        let touched: Vec<usize> = if misplaced {
            added.clone()
        } else {
            added.iter().chain(&changed).copied().collect()
        };
        if order_changed {
            self.insert_sorted(added);
        }
        for i in touched {
            let passes = self.matches(i);
            view_changed |= passes != self.passes[i];
            self.passes[i] = passes;
        }
        if view_changed {
            self.review();
        }
        self.place_cursor(at);
    }

    /// A complete listing of `service` in `scope`: devices it no longer holds go.
    pub fn retain_listed(&mut self, scope: &str, service: Service, ids: &[String]) {
        let listed: HashSet<&str> = ids.iter().map(String::as_str).collect();
        self.retain(|d| d.service != service || d.scope != scope || listed.contains(d.id.as_str()));
    }

    /// Keeps only the devices `keep` says to.
    pub fn retain(&mut self, keep: impl Fn(&Device) -> bool) {
        if self.rows.iter().all(&keep) {
            return;
        }
        let at = self.current().map(Device::key);
        self.rows.retain(|d| keep(d));
        self.label_order = None;
        self.rebuild_hay();
        self.index.rebuild(&self.rows);
        self.marks.retain(|k| self.index.contains(&self.rows, k));
        self.counts = [0; 2];
        for d in &self.rows {
            self.counts[d.service as usize] += 1;
        }
        self.resort();
        self.refilter();
        let at = at.and_then(|k| self.index.get(&self.rows, &k));
        self.place_cursor(at);
    }

    /// The clock moved on. The view is not rebuilt for it: a device turning unreachable
    /// joins a `status:unreachable` view at the next change of rows or filter, as a status
    /// change would.
    pub fn at(&mut self, now: u64) {
        self.now = now;
        self.parsed.at(now);
    }

    /// A filter that only narrows the last one (a character typed at the end of a word, or
    /// a term added) looks only at the rows already shown; any other looks at every row once.
    /// Neither sorts.
    pub fn set_filter(&mut self, filter: String) {
        let at = self.current_row();
        let mut parsed = Filter::parse(&filter);
        parsed.at(self.now);
        let narrower = parsed.narrows(&self.parsed);
        self.parsed = parsed;
        self.filter = filter;
        if narrower {
            let (rows, parsed, passes) = (&self.rows, &self.parsed, &mut self.passes);
            let (hay, hay_at) = (&self.hay, &self.hay_at);
            self.view.retain(|&i| {
                let keep = parsed.matches_in(&rows[i], hay_of(hay, hay_at, i));
                passes[i] = keep;
                keep
            });
        } else {
            self.refilter();
        }
        self.place_cursor(at);
        // The device under the cursor was filtered out: start at the first match.
        if self.current_row() != at {
            self.cursor = 0;
        }
    }

    pub fn cycle_sort(&mut self) {
        let at = self.current_row();
        self.sort = Some(self.sort.map_or(SortColumn::Service, SortColumn::next));
        self.resort();
        self.review();
        self.place_cursor(at);
    }

    /// The order is total, so reversing it is reversing the vectors: no sort.
    pub fn toggle_reverse(&mut self) {
        let at = self.current_row();
        self.reverse = !self.reverse;
        self.order.reverse();
        self.view.reverse();
        self.reindex();
        self.place_cursor(at);
    }

    pub fn toggle_mark(&mut self) {
        if let Some(key) = self.current().map(Device::key)
            && !self.marks.remove(&key)
        {
            self.marks.insert(key);
        }
    }

    pub fn mark_all_shown(&mut self) {
        let keys: Vec<DeviceKey> = self.view.iter().map(|&i| self.rows[i].key()).collect();
        self.marks.extend(keys);
    }

    /// The devices an action applies to: the marked ones, or else the one under the cursor.
    pub fn selection(&self) -> Vec<&Device> {
        if self.marks.is_empty() {
            return self.current().into_iter().collect();
        }
        // In the order shown (a rollout's waves follow it), then marks the filter hides.
        let mut marked: Vec<usize> = self
            .marks
            .iter()
            .filter_map(|k| self.index.get(&self.rows, k))
            .collect();
        let (mut out, mut hidden): (Vec<usize>, Vec<usize>) =
            marked.drain(..).partition(|&i| self.passes[i]);
        out.sort_unstable_by_key(|&i| self.order_pos[i]);
        hidden.sort_by_key(|&i| (self.rows[i].service, self.rows[i].label()));
        out.extend(hidden);
        out.into_iter().map(|i| &self.rows[i]).collect()
    }

    /// Marked devices the filter hides.
    pub fn hidden_marks(&self) -> usize {
        // By the marks, not the rows: the title asks every frame.
        self.marks
            .iter()
            .filter_map(|k| self.index.get(&self.rows, k))
            .filter(|&i| !self.passes[i])
            .count()
    }

    /// The selection without the marks the filter hides (the cursor's row when none shown is
    /// marked).
    pub fn shown_selection(&self) -> Vec<&Device> {
        let mut marked: Vec<usize> = self
            .marks
            .iter()
            .filter_map(|k| self.index.get(&self.rows, k))
            .filter(|&i| self.passes[i])
            .collect();
        if marked.is_empty() {
            return self.current().into_iter().collect();
        }
        marked.sort_unstable_by_key(|&i| self.order_pos[i]);
        marked.into_iter().map(|i| &self.rows[i]).collect()
    }

    pub fn move_by(&mut self, delta: isize) {
        self.moved = true;
        if self.view.is_empty() {
            self.cursor = 0;
            return;
        }
        let last = self.view.len() as isize - 1;
        self.cursor = (self.cursor as isize + delta).clamp(0, last) as usize;
    }

    pub fn to_end(&mut self) {
        self.moved = true;
        self.cursor = self.view.len().saturating_sub(1);
    }

    fn current_row(&self) -> Option<usize> {
        self.view.get(self.cursor).copied()
    }

    /// Puts the cursor back on row `at` (or where it was, if that row is not shown): the view
    /// is in `order`'s order, so its place is a binary search.
    fn place_cursor(&mut self, at: Option<usize>) {
        if !self.moved {
            self.cursor = 0;
            return;
        }
        let found = at.and_then(|r| {
            let pos = self.order_pos[r];
            self.view
                .binary_search_by_key(&pos, |&i| self.order_pos[i])
                .ok()
        });
        self.cursor = found.unwrap_or_else(|| self.cursor.min(self.view.len().saturating_sub(1)));
    }

    /// The scope's place in the order named: the unsorted table's order.
    fn rank(&self, scope: &str) -> usize {
        self.scope_order
            .iter()
            .position(|s| s == scope)
            .unwrap_or(usize::MAX)
    }

    /// Row `a` against row `b` in the table's order.
    fn before(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let (da, db) = (&self.rows[a], &self.rows[b]);
        let ka = sort_key(da, self.sort, self.rank(&da.scope));
        let kb = sort_key(db, self.sort, self.rank(&db.scope));
        let o = ka.cmp(&kb).then(a.cmp(&b));
        if self.reverse { o.reverse() } else { o }
    }

    /// Whether row `i` still sorts between its neighbours in `order`.
    fn in_place(&self, i: usize) -> bool {
        let p = self.order_pos[i];
        (p == 0 || self.before(self.order[p - 1], i).is_lt())
            && (p + 1 >= self.order.len() || self.before(i, self.order[p + 1]).is_lt())
    }

    /// Puts rows (not in `order`) into it: each found by binary search, then one pass.
    fn insert_sorted(&mut self, mut rows: Vec<usize>) {
        rows.sort_unstable_by(|&a, &b| self.before(a, b));
        let places: Vec<usize> = rows
            .iter()
            .map(|&r| self.order.partition_point(|&o| self.before(o, r).is_lt()))
            .collect();
        let mut order = Vec::with_capacity(self.order.len() + rows.len());
        let mut from = 0;
        for (&place, &r) in places.iter().zip(&rows) {
            order.extend_from_slice(&self.order[from..place]);
            order.push(r);
            from = place;
        }
        order.extend_from_slice(&self.order[from..]);
        self.order = order;
        self.reindex();
    }

    fn reindex(&mut self) {
        self.order_pos.resize(self.rows.len(), usize::MAX);
        for (p, &i) in self.order.iter().enumerate() {
            self.order_pos[i] = p;
        }
    }

    /// Sorts every row in the order `before` gives without comparing rows: each row's column
    /// value becomes the rank of its distinct value (a fleet has few statuses, versions or
    /// regions), and the rows, taken in their cached order by label (then row), are dealt
    /// into one run per rank. One hash a row and two passes; no sort of 100,000 keys.
    fn resort(&mut self) {
        let sort = self.sort;
        // Unsorted, the label is no part of the order: service and scope, then arrival.
        let base = if sort.is_some() {
            self.label_order()
        } else {
            (0..self.rows.len() as u32).collect()
        };
        // Each row's value numbered as first seen, then the few distinct values sorted and
        // the numbers turned into ranks. By name the label is the whole order.
        // foldhash: this hashes a key per row at every sort, and no one picks the keys to
        // collide, so SipHash's defence is not needed here and its cost is.
        let mut seen: HashMap<Key<'_>, u32, foldhash::fast::RandomState> = HashMap::default();
        let firsts: Vec<u32> = if sort == Some(SortColumn::Name) {
            vec![0; self.rows.len()]
        } else {
            self.rows
                .iter()
                .map(|d| {
                    let next = seen.len() as u32;
                    *seen
                        .entry(sort_key(d, sort, self.rank(&d.scope)).0)
                        .or_insert(next)
                })
                .collect()
        };
        let mut distinct: Vec<(Key<'_>, u32)> = seen.into_iter().collect();
        distinct.sort_unstable();
        let mut rank_of = vec![0u32; distinct.len().max(1)];
        for (r, (_, first)) in distinct.iter().enumerate() {
            rank_of[*first as usize] = r as u32;
        }
        // Where each rank's run starts, then the rows dealt out in label order.
        let mut start = vec![0usize; rank_of.len() + 1];
        for &first in &firsts {
            start[rank_of[first as usize] as usize + 1] += 1;
        }
        for r in 1..start.len() {
            start[r] += start[r - 1];
        }
        let mut order = vec![0usize; self.rows.len()];
        for &i in &base {
            let run = &mut start[rank_of[firsts[i as usize] as usize] as usize];
            order[*run] = i as usize;
            *run += 1;
        }
        if self.reverse {
            order.reverse();
        }
        self.order = order;
        self.reindex();
    }

    /// Every row in order of (label, row), built again only when stale.
    fn label_order(&mut self) -> Vec<u32> {
        if let Some(by) = &self.label_order
            && by.len() == self.rows.len()
        {
            return by.clone();
        }
        let mut by: Vec<u32> = (0..self.rows.len() as u32).collect();
        by.sort_unstable_by(|&a, &b| {
            let (da, db) = (&self.rows[a as usize], &self.rows[b as usize]);
            da.label().cmp(db.label()).then(a.cmp(&b))
        });
        self.label_order = Some(by.clone());
        by
    }

    /// Judges every row by the filter again, then the view.
    fn refilter(&mut self) {
        self.passes = (0..self.rows.len()).map(|i| self.matches(i)).collect();
        self.review();
    }

    /// The view from the order and what passes: one pass, no filtering.
    fn review(&mut self) {
        self.view = self
            .order
            .iter()
            .copied()
            .filter(|&i| self.passes[i])
            .collect();
    }

    /// Whether row `i` passes the filter.
    fn matches(&self, i: usize) -> bool {
        self.parsed
            .matches_in(&self.rows[i], hay_of(&self.hay, &self.hay_at, i))
    }

    /// Row `i`'s filter text, written again: in place when unchanged, else at the end.
    fn write_hay(&mut self, i: usize) {
        let start = self.hay.len();
        filter::haystack(&self.rows[i], &mut self.hay);
        let len = self.hay.len() - start;
        let slice = (start as u32, len as u32);
        if let Some(&(at, old)) = self.hay_at.get(i) {
            let (at, old) = (at as usize, old as usize);
            if old == len && self.hay[at..at + old] == self.hay[start..] {
                self.hay.truncate(start);
                return;
            }
            self.hay_stale += old;
            self.hay_at[i] = slice;
        } else {
            self.hay_at.push(slice);
        }
        if self.hay_stale > self.hay.len() / 2 {
            self.rebuild_hay();
        }
    }

    fn rebuild_hay(&mut self) {
        self.hay.clear();
        self.hay_at.clear();
        self.hay_stale = 0;
        for i in 0..self.rows.len() {
            self.write_hay(i);
        }
        self.hay.shrink_to_fit();
    }

    /// The view as a full rebuild would make it: what the incremental upkeep must equal.
    #[cfg(test)]
    fn rebuilt(&self) -> Vec<usize> {
        let mut view: Vec<usize> = (0..self.rows.len())
            .filter(|&i| self.parsed.matches(&self.rows[i]))
            .collect();
        view.sort_by(|&a, &b| self.before(a, b));
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(service: Service, id: &str, status: &str) -> Device {
        let mut d = Device::new(service, id);
        d.status = status.into();
        d
    }

    /// The upkeep against a rebuild from scratch, after every step of a random session:
    /// pages of new and changed rows, filters typed on and edited back, sorts, reversals and
    /// listings that drop rows.
    mod upkeep {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Step {
            Page(Vec<(bool, u8, u8, u8)>),
            Filter(&'static str),
            Sort,
            Reverse,
            Drop(u8),
            Move(i8),
        }

        const FILTERS: [&str; 8] = ["", "p", "p-1", "status:online", "!s", "env=prod", "v", "s-"];
        const STATUS: [&str; 4] = ["ONLINE", "OFFLINE", "LOCKED", "UNLOCKED"];

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                prop::collection::vec((any::<bool>(), 0u8..40, 0u8..4, 0u8..5), 0..12)
                    .prop_map(Step::Page),
                (0..FILTERS.len()).prop_map(|i| Step::Filter(FILTERS[i])),
                Just(Step::Sort),
                Just(Step::Reverse),
                (0u8..40).prop_map(Step::Drop),
                any::<i8>().prop_map(Step::Move),
            ]
        }

        fn row(snow: bool, n: u8, status: u8, version: u8) -> Device {
            let service = if snow {
                Service::Snow
            } else {
                Service::Panorama
            };
            let mut d = Device::new(service, format!("{}-{n}", if snow { "s" } else { "p" }));
            d.status = STATUS[status as usize].into();
            d.current_software = Some(format!("5.{version}.{}", n % 3).into());
            d.latest = (version > 2).then(|| format!("OTA {version}").into());
            if n.is_multiple_of(4) {
                d.tags.insert("env", "prod");
            }
            d.scope = format!("ctx/r{}", n % 2).into();
            d
        }

        proptest! {
            #[test]
            fn the_view_is_always_what_a_rebuild_makes(steps in prop::collection::vec(step(), 1..40)) {
                let mut list = Devices::default();
                list.set_scope_order(vec!["ctx/r1".into(), "ctx/r0".into()]);
                for step in steps {
                    let at = list.current().map(Device::key);
                    let moves = matches!(step, Step::Page(_) | Step::Sort | Step::Reverse);
                    match step {
                        Step::Page(rows) => list.upsert(rows.into_iter().map(|(s, n, st, v)| row(s, n, st, v)).collect()),
                        Step::Filter(f) => list.set_filter(f.to_string()),
                        Step::Sort => list.cycle_sort(),
                        Step::Reverse => list.toggle_reverse(),
                        Step::Drop(n) => list.retain(|d| !d.id.ends_with(&format!("-{n}"))),
                        Step::Move(by) => list.move_by(by as isize),
                    }
                    prop_assert_eq!(&list.view, &list.rebuilt());
                    let order: Vec<usize> = list.order.iter().copied().filter(|&i| list.passes[i]).collect();
                    prop_assert_eq!(&order, &list.view);
                    prop_assert_eq!(list.order.len(), list.rows.len());
                    prop_assert_eq!(list.count(Service::Panorama) + list.count(Service::Snow), list.len());
                    prop_assert!(list.cursor < list.shown().max(1));
                    if moves && list.moved && let Some(at) = at && list.get(&at).is_some_and(|d| list.parsed.matches(d)) {
                        prop_assert_eq!(list.current().map(Device::key), Some(at), "the cursor keeps its device");
                    }
                }
            }
        }
    }

    #[test]
    fn versions_sort_by_number_and_tags_pair_by_pair() {
        let mut list = Devices::default();
        let rows = [
            ("a", "4.3.100", "site=b"),
            ("b", "4.3.93", ""),
            ("c", "10.0", "env=x"),
        ];
        list.upsert(
            rows.iter()
                .map(|(id, v, tag)| {
                    let mut d = device(Service::Panorama, id, "ONLINE");
                    d.current_software = Some((*v).into());
                    if let Some((k, val)) = tag.split_once('=') {
                        d.tags.insert(k, val);
                    }
                    d
                })
                .collect(),
        );
        let ids = |list: &Devices| -> Vec<String> {
            (0..list.shown())
                .map(|i| list.row(i).unwrap().id.to_string())
                .collect()
        };
        while list.sort != Some(SortColumn::Current) {
            list.cycle_sort();
        }
        assert_eq!(ids(&list), ["b", "a", "c"], "4.3.93 < 4.3.100 < 10.0");
        while list.sort != Some(SortColumn::Tags) {
            list.cycle_sort();
        }
        assert_eq!(ids(&list), ["b", "c", "a"], "none, env=x, site=b");
    }

    #[test]
    fn refresh_keeps_cursor_marks_filter_and_sort() {
        let mut list = Devices::default();
        list.upsert(vec![
            device(Service::Panorama, "p-b", "ONLINE"),
            device(Service::Panorama, "p-a", "OFFLINE"),
            device(Service::Snow, "s-a", "LOCKED"),
        ]);
        list.cycle_sort(); // by service
        list.cycle_sort(); // by name
        list.move_by(-10);
        assert_eq!(list.current().unwrap().id, "p-a");
        list.move_by(1);
        list.toggle_mark();
        let marked = list.current().unwrap().key();
        list.set_filter("p-".into());
        assert_eq!(list.shown(), 2);

        let mut newer = device(Service::Panorama, "p-b", "REBOOTING");
        newer.current_software = Some("5.0.21".into());
        list.upsert(vec![newer, device(Service::Panorama, "p-0", "ONLINE")]);
        assert_eq!(
            list.current().unwrap().key(),
            marked,
            "the cursor stays on its device"
        );
        assert_eq!(list.current().unwrap().status, "REBOOTING");
        assert!(list.marks.contains(&marked));
        assert_eq!(list.filter, "p-");
        assert_eq!(list.shown(), 3);
    }

    #[test]
    fn the_cursor_stays_on_top_while_rows_arrive_until_the_operator_moves() {
        let mut list = Devices::default();
        list.upsert(vec![device(Service::Snow, "s1", "LOCKED")]);
        list.upsert(vec![device(Service::Panorama, "p1", "ONLINE")]);
        assert_eq!(
            list.current().unwrap().id,
            "p1",
            "Panorama sorts first and the cursor is on top"
        );
        list.move_by(1);
        list.upsert(vec![device(Service::Panorama, "p0", "ONLINE")]);
        assert_eq!(
            list.current().unwrap().id,
            "s1",
            "once moved, the cursor follows its device"
        );
        list.set_filter("p".into());
        assert_eq!(list.cursor, 0, "filtered out: the first match");
    }

    #[test]
    fn a_complete_listing_drops_devices_that_are_gone() {
        let mut list = Devices::default();
        list.upsert(vec![
            device(Service::Snow, "s1", "LOCKED"),
            device(Service::Snow, "s2", "LOCKED"),
        ]);
        list.move_by(1);
        list.toggle_mark();
        list.retain_listed("", Service::Snow, &["s1".to_string()]);
        assert_eq!(list.len(), 1);
        assert!(list.marks.is_empty());
        assert_eq!(list.cursor, 0);
    }

    #[test]
    fn selection_is_the_marks_or_the_cursor() {
        let mut list = Devices::default();
        list.upsert(vec![
            device(Service::Snow, "s1", ""),
            device(Service::Snow, "s2", ""),
        ]);
        assert_eq!(list.selection().len(), 1);
        list.mark_all_shown();
        assert_eq!(list.selection().len(), 2);
        list.set_filter("s2".into());
        assert_eq!(list.selection().len(), 2, "marks outlive the filter");
    }
}
