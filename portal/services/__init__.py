"""Operations: each takes explicit arguments (actor, ids, data) and owns its transaction."""
