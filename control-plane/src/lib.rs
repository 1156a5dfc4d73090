//! The control plane: catalog (from the model-store), worker registry and the
//! router in front of the workers. Not built yet: it is the subject of the
//! control-plane issue; the crate exists so the workspace has the layout
//! DESIGN.md fixes.
