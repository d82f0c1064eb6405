//! A `Vec` with a maximum length that deserialization enforces.
//!
//! Collections that can be large (virtual services, real servers) live on the heap, but every one
//! has a documented maximum. Decoding refuses a sequence longer than that maximum before storing
//! its elements, and never reserves more than a small amount up front: a hostile length prefix
//! cannot make the decoder allocate more than the bytes it actually decoded justify.

use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;

use serde::de::{Deserialize, Deserializer, Error as _, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

/// At most this many elements are reserved before they have been decoded.
const PREALLOCATE_AT_MOST: usize = 16;

/// A vector holding at most `N` elements.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BoundedVec<T, const N: usize>(Vec<T>);

/// The vector already holds its maximum number of elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityExceeded {
    /// The maximum the collection allows.
    pub max: usize,
}

impl fmt::Display for CapacityExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at most {} entries are allowed here; remove some",
            self.max
        )
    }
}

impl<T, const N: usize> BoundedVec<T, N> {
    /// The maximum number of elements.
    pub const MAX: usize = N;

    /// An empty vector.
    pub const fn new() -> Self {
        BoundedVec(Vec::new())
    }

    /// Wraps `items` if there are at most `N` of them.
    pub fn from_vec(items: Vec<T>) -> Result<Self, CapacityExceeded> {
        if items.len() > N {
            return Err(CapacityExceeded { max: N });
        }
        Ok(BoundedVec(items))
    }

    /// Appends `item`, refusing it when the vector is full.
    pub fn push(&mut self, item: T) -> Result<(), CapacityExceeded> {
        if self.0.len() >= N {
            return Err(CapacityExceeded { max: N });
        }
        self.0.push(item);
        Ok(())
    }

    /// Mutable access to the elements (the length cannot change through a slice).
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }

    /// Removes and returns the element at `index`, shifting the later ones down; None when
    /// `index` is out of range.
    pub fn remove(&mut self, index: usize) -> Option<T> {
        (index < self.0.len()).then(|| self.0.remove(index))
    }

    /// Removes every element for which `keep` returns false.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.0.retain(keep);
    }

    /// The elements as a plain vector.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

impl<T, const N: usize> Default for BoundedVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Deref for BoundedVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<'a, T, const N: usize> IntoIterator for &'a BoundedVec<T, N> {
    type Item = &'a T;
    type IntoIter = core::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: Serialize, const N: usize> Serialize for BoundedVec<T, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for BoundedVec<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T, const N: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for BoundedVisitor<T, N> {
            type Value = BoundedVec<T, N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of at most {N} entries")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                if let Some(claimed) = seq.size_hint() {
                    if claimed > N {
                        return Err(A::Error::custom(format_args!(
                            "list of {claimed} entries is longer than the maximum of {N}"
                        )));
                    }
                }
                let reserve = seq.size_hint().unwrap_or(0).min(N).min(PREALLOCATE_AT_MOST);
                let mut items = Vec::with_capacity(reserve);
                while let Some(item) = seq.next_element()? {
                    if items.len() >= N {
                        return Err(A::Error::custom(format_args!(
                            "list is longer than the maximum of {N} entries"
                        )));
                    }
                    items.push(item);
                }
                Ok(BoundedVec(items))
            }
        }

        deserializer.deserialize_seq(BoundedVisitor::<T, N>(PhantomData))
    }
}
