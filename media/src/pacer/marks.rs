//! A fixed-capacity list of mark ids, returned by value without allocating.

/// Most marks a `Pacer` holds pending at once.
pub const MAX_MARKS: usize = 64;

/// Mark ids, in the order they were placed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MarkList {
    ids: [u64; MAX_MARKS],
    len: usize,
}

impl Default for MarkList {
    fn default() -> Self {
        MarkList {
            ids: [0; MAX_MARKS],
            len: 0,
        }
    }
}

impl MarkList {
    /// The ids as a slice.
    pub fn as_slice(&self) -> &[u64] {
        &self.ids[..self.len]
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `id`; the caller guarantees room (lists never outgrow the pending queue).
    pub(crate) fn push(&mut self, id: u64) {
        if let Some(slot) = self.ids.get_mut(self.len) {
            *slot = id;
            self.len += 1;
        }
    }
}

impl std::fmt::Debug for MarkList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}
