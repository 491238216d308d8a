//! Remote backends for [`Delivery`](crate::delivery): each speaks one protocol and is
//! enabled by its own cargo feature.
//!
//! | backend | feature | deduplicates on the event id by |
//! | --- | --- | --- |
