"""Pull loops: each fetches batches, writes their lines, then acks them."""
