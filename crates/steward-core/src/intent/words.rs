//! An utterance's tokens as the grammar reads them: words are taken one
//! by one (a verb, a particle, a value), and what is left is the target
//! phrase.

use super::numbers::Tok;

/// The tokens of an utterance, some taken by the grammar.
pub(crate) struct Words {
    pub toks: Vec<Tok>,
    pub taken: Vec<bool>,
}

impl Words {
    pub(crate) fn new(toks: &[Tok]) -> Words {
        Words { toks: toks.to_vec(), taken: vec![false; toks.len()] }
    }

    pub(crate) fn word(&self, i: usize) -> Option<&str> {
        if self.taken.get(i).copied().unwrap_or(true) {
            None
        } else {
            self.toks[i].word()
        }
    }

    pub(crate) fn find(&self, pred: impl Fn(&str) -> bool) -> Option<usize> {
        (0..self.toks.len()).find(|&i| self.word(i).is_some_and(&pred))
    }

    pub(crate) fn rfind(&self, pred: impl Fn(&str) -> bool) -> Option<usize> {
        (0..self.toks.len()).rev().find(|&i| self.word(i).is_some_and(&pred))
    }

    pub(crate) fn take(&mut self, i: usize) {
        if let Some(t) = self.taken.get_mut(i) {
            *t = true;
        }
    }

    /// Takes the first untaken occurrence of one of `words`; which one.
    pub(crate) fn take_any(&mut self, words: &[&'static str]) -> Option<&'static str> {
        let i = self.find(|w| words.contains(&w))?;
        let word = words.iter().find(|w| self.word(i) == Some(**w)).copied();
        self.take(i);
        word
    }

    /// Takes the first run of untaken words equal to `seq`.
    pub(crate) fn take_seq(&mut self, seq: &[&str]) -> bool {
        let n = seq.len();
        for start in 0..self.toks.len() {
            if start + n <= self.toks.len() && (0..n).all(|k| self.word(start + k) == Some(seq[k])) {
                for k in 0..n {
                    self.take(start + k);
                }
                return true;
            }
        }
        false
    }

    pub(crate) fn next(&self, i: usize) -> Option<usize> {
        (i + 1..self.toks.len()).find(|&j| !self.taken[j])
    }

    pub(crate) fn prev(&self, i: usize) -> Option<usize> {
        (0..i).rev().find(|&j| !self.taken[j])
    }

    pub(crate) fn rest(&self) -> Vec<Tok> {
        self.toks.iter().zip(&self.taken).filter(|(_, t)| !**t).map(|(tok, _)| tok.clone()).collect()
    }
}
