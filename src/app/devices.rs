//! The devices list: rows from both services, filter, sort, marks and the cursor. A refresh
//! replaces rows in place, so none of these is lost when new data arrives.

use std::collections::{HashMap, HashSet};

use crate::fleet::filter::Filter;
use crate::fleet::{Device, DeviceKey, Service, version_key};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortColumn {
    Service,
    Name,
    Region,
    Account,
    Status,
    Current,
    Available,
    Latest,
    Tags,
}

impl SortColumn {
    pub const ALL: [SortColumn; 9] = [
        Self::Service,
        Self::Name,
        Self::Region,
        Self::Account,
        Self::Status,
        Self::Current,
        Self::Available,
        Self::Latest,
        Self::Tags,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Service => "Service",
            Self::Name => "Name",
            Self::Region => "Region",
            Self::Account => "Account",
            Self::Status => "Status",
            Self::Current => "Current",
            Self::Available => "Available",
            Self::Latest => "Latest job/task",
            Self::Tags => "Tags",
        }
    }

    fn next(self) -> Self {
        let i = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

#[derive(Debug, Default)]
pub struct Devices {
    rows: Vec<Device>,
    index: HashMap<DeviceKey, usize>,
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
            self.scope_order = order;
            self.rebuild_at(self.current().map(Device::key));
        }
    }

    /// Gives devices whose reads named no account their scope's, once it is known.
    pub fn fill_accounts(&mut self, accounts: &HashMap<String, String>) {
        let mut changed = false;
        for d in &mut self.rows {
            if d.account.is_none()
                && let Some(a) = accounts.get(&d.scope)
            {
                d.account = Some(a.clone());
                changed = true;
            }
        }
        if changed {
            self.rebuild_at(self.current().map(Device::key));
        }
    }

    pub fn get(&self, key: &DeviceKey) -> Option<&Device> {
        self.index.get(key).map(|&i| &self.rows[i])
    }

    pub fn count(&self, service: Service) -> usize {
        self.counts[service as usize]
    }

    fn recount(&mut self) {
        self.counts = [0; 2];
        for d in &self.rows {
            self.counts[d.service as usize] += 1;
        }
    }

    /// Adds new devices and merges news into known ones.
    pub fn upsert(&mut self, devices: Vec<Device>) {
        for d in devices {
            match self.index.get(&d.key()) {
                Some(&i) => self.rows[i].merge(d),
                None => {
                    self.index.insert(d.key(), self.rows.len());
                    self.rows.push(d);
                }
            }
        }
        self.recount();
        self.rebuild();
    }

    /// A complete listing of `service` in `scope`: devices it no longer holds go.
    pub fn retain_listed(&mut self, scope: &str, service: Service, ids: &[String]) {
        let listed: HashSet<&str> = ids.iter().map(String::as_str).collect();
        self.retain(|d| d.service != service || d.scope != scope || listed.contains(d.id.as_str()));
    }

    /// Keeps only the devices `keep` says to.
    pub fn retain(&mut self, keep: impl Fn(&Device) -> bool) {
        let at = self.current().map(Device::key);
        let before = self.rows.len();
        self.rows.retain(|d| keep(d));
        if self.rows.len() != before {
            self.index = self
                .rows
                .iter()
                .enumerate()
                .map(|(i, d)| (d.key(), i))
                .collect();
            self.marks.retain(|k| self.index.contains_key(k));
            self.recount();
            self.rebuild_at(at);
        }
    }

    /// The clock moved on. The view is not rebuilt for it: a device turning unreachable
    /// joins a `status:unreachable` view at the next change of rows or filter, as a status
    /// change would.
    pub fn at(&mut self, now: u64) {
        self.now = now;
        self.parsed.at(now);
    }

    pub fn set_filter(&mut self, filter: String) {
        let at = self.current().map(Device::key);
        self.parsed = Filter::parse(&filter);
        self.parsed.at(self.now);
        self.filter = filter;
        self.rebuild();
        // The device under the cursor was filtered out: start at the first match.
        if self.current().map(Device::key) != at {
            self.cursor = 0;
        }
    }

    pub fn cycle_sort(&mut self) {
        self.sort = Some(self.sort.map_or(SortColumn::Service, SortColumn::next));
        self.rebuild();
    }

    pub fn toggle_reverse(&mut self) {
        self.reverse = !self.reverse;
        self.rebuild();
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
        let mut out: Vec<&Device> = (0..self.shown())
            .filter_map(|i| self.row(i))
            .filter(|d| self.marks.contains(&d.key()))
            .collect();
        let shown: HashSet<DeviceKey> = out.iter().map(|d| d.key()).collect();
        let mut hidden: Vec<&Device> = self
            .rows
            .iter()
            .filter(|d| self.marks.contains(&d.key()) && !shown.contains(&d.key()))
            .collect();
        hidden.sort_by_key(|d| (d.service, d.label().to_string()));
        out.extend(hidden);
        out
    }

    /// Marked devices the filter hides.
    pub fn hidden_marks(&self) -> usize {
        // By the marks, not the rows: the title asks every frame.
        self.marks
            .iter()
            .filter_map(|k| self.get(k))
            .filter(|d| !self.matches(d))
            .count()
    }

    /// The selection without the marks the filter hides (the cursor's row when none shown is
    /// marked).
    pub fn shown_selection(&self) -> Vec<&Device> {
        let marked: Vec<&Device> = (0..self.shown())
            .filter_map(|i| self.row(i))
            .filter(|d| self.marks.contains(&d.key()))
            .collect();
        if marked.is_empty() {
            return self.current().into_iter().collect();
        }
        marked
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

    fn matches(&self, d: &Device) -> bool {
        self.parsed.matches(d)
    }

    /// Recomputes the view and keeps the cursor on the same device.
    fn rebuild(&mut self) {
        let at = self.current().map(Device::key);
        self.rebuild_at(at);
    }

    fn rebuild_at(&mut self, at: Option<DeviceKey>) {
        let mut view: Vec<usize> = (0..self.rows.len())
            .filter(|&i| self.matches(&self.rows[i]))
            .collect();
        let rows = &self.rows;
        match self.sort {
            Some(column) => view.sort_by(|&a, &b| compare(&rows[a], &rows[b], column)),
            // Unsorted: Panorama first, then the scopes in the order they were named, each in
            // the order its service listed it, so arrival order never reorders the table.
            None => {
                let rank = |scope: &str| {
                    self.scope_order
                        .iter()
                        .position(|s| s == scope)
                        .unwrap_or(usize::MAX)
                };
                view.sort_by_key(|&i| (rows[i].service, rank(&rows[i].scope)))
            }
        }
        if self.reverse {
            view.reverse();
        }
        self.view = view;
        if !self.moved {
            self.cursor = 0;
            return;
        }
        self.cursor = at
            .and_then(|k| self.view.iter().position(|&i| self.rows[i].key() == k))
            .unwrap_or_else(|| self.cursor.min(self.view.len().saturating_sub(1)));
    }
}

fn compare(a: &Device, b: &Device, column: SortColumn) -> std::cmp::Ordering {
    let version = |v: &Option<String>| v.as_deref().map(version_key).unwrap_or_default();
    let primary = match column {
        SortColumn::Service => a.service.cmp(&b.service),
        SortColumn::Name => a.label().cmp(b.label()),
        SortColumn::Region => a.region.cmp(&b.region),
        SortColumn::Account => a.account.cmp(&b.account),
        SortColumn::Status => a.status.cmp(&b.status),
        SortColumn::Current => version(&a.current_software).cmp(&version(&b.current_software)),
        SortColumn::Available => {
            version(&a.available_software).cmp(&version(&b.available_software))
        }
        SortColumn::Latest => a.latest.cmp(&b.latest),
        SortColumn::Tags => a.tags_text().cmp(&b.tags_text()),
    };
    primary.then_with(|| a.label().cmp(b.label()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(service: Service, id: &str, status: &str) -> Device {
        let mut d = Device::new(service, id);
        d.status = status.into();
        d
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
