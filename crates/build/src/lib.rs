//! Source to build context.
