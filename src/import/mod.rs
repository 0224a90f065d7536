//! Importers that turn other tools' configs into pathwatch configs (`pathwatch import`).

pub mod blackbox;
