//! netplugin.
