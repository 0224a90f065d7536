//! Disjoint sets over `0..n` (union-find with path halving): the connected parts of a graph
//! in near-linear time. Sharding cuts a config into groups with it, and the root-cause
//! judgement cuts the dependency graph into the parts a verdict can change.

/// Sets over `0..n`; every element starts alone.
#[derive(Debug, Clone)]
pub(crate) struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    pub(crate) fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n).collect(),
        }
    }

    /// The root of `i`'s set: its lowest element, so the result does not depend on the
    /// order of the unions (callers number elements in a stable order and get stable roots).
    pub(crate) fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Joins the sets of `a` and `b`.
    pub(crate) fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UnionFind;

    #[test]
    fn the_root_is_the_lowest_member_whatever_the_order() {
        let mut u = UnionFind::new(6);
        u.union(4, 5);
        u.union(5, 2);
        u.union(1, 3);
        assert_eq!([u.find(2), u.find(4), u.find(5)], [2, 2, 2]);
        assert_eq!([u.find(1), u.find(3)], [1, 1]);
        assert_eq!(u.find(0), 0);
        u.union(3, 4);
        assert_eq!(
            (0..6).map(|i| u.find(i)).collect::<Vec<_>>(),
            [0, 1, 1, 1, 1, 1]
        );
    }
}
