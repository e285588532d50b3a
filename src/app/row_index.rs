//! The devices table's rows by device key, holding only each row's number: the key is read
//! from the row itself. A map from key to row kept a second copy of every key (40 bytes a
//! row with its number, 5 MB at 100,000 devices); this keeps 4.

use hashbrown::HashTable;

use crate::fleet::{Device, DeviceKey, Service};

#[derive(Debug, Default)]
pub struct RowIndex {
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl RowIndex {
    fn hash(&self, service: Service, id: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one((service as u8, id))
    }

    pub fn get(&self, rows: &[Device], key: &DeviceKey) -> Option<usize> {
        let hash = self.hash(key.service, key.id.as_str());
        self.table
            .find(hash, |&i| {
                let d = &rows[i as usize];
                d.service == key.service && d.id == key.id
            })
            .map(|&i| i as usize)
    }

    pub fn contains(&self, rows: &[Device], key: &DeviceKey) -> bool {
        self.get(rows, key).is_some()
    }

    /// Row `i` (already in `rows`) under its key.
    pub fn insert(&mut self, rows: &[Device], i: usize) {
        let d = &rows[i];
        let hash = self.hash(d.service, &d.id);
        let hasher = &self.hasher;
        self.table.insert_unique(hash, i as u32, |&j| {
            let r = &rows[j as usize];
            use std::hash::BuildHasher;
            hasher.hash_one((r.service as u8, r.id.as_str()))
        });
    }

    /// Every row again, after rows went.
    pub fn rebuild(&mut self, rows: &[Device]) {
        self.table.clear();
        self.table.reserve(rows.len(), |_| 0);
        for i in 0..rows.len() {
            self.insert(rows, i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_found_by_key_and_after_a_rebuild() {
        let mut rows: Vec<Device> = (0..1000)
            .map(|i| Device::new(Service::Snow, format!("smd-{i}")))
            .collect();
        rows.push(Device::new(Service::Panorama, "smd-7"));
        let mut index = RowIndex::default();
        for i in 0..rows.len() {
            index.insert(&rows, i);
        }
        assert_eq!(
            index.get(&rows, &DeviceKey::new(Service::Snow, "smd-7")),
            Some(7)
        );
        assert_eq!(
            index.get(&rows, &DeviceKey::new(Service::Panorama, "smd-7")),
            Some(1000),
            "the service is part of the key"
        );
        assert!(!index.contains(&rows, &DeviceKey::new(Service::Snow, "smd-1000")));
        rows.remove(3);
        index.rebuild(&rows);
        assert_eq!(
            index.get(&rows, &DeviceKey::new(Service::Snow, "smd-7")),
            Some(6)
        );
        assert_eq!(
            index.get(&rows, &DeviceKey::new(Service::Snow, "smd-3")),
            None
        );
    }
}
