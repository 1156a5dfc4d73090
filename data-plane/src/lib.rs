//! The data-plane worker: subscribes to the model-store's Watch stream,
//! downloads versions into a disk cache, loads them and swaps them in
//! atomically. Not built yet: it is the subject of the data-plane issue; the
//! crate exists so the workspace has the layout DESIGN.md fixes.
