//! Exporters: the same snapshot in the formats of existing collection stacks.
