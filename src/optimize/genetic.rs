//! Genetic search with genevo over genomes in the unit cube (one real gene per dimension in
//! [0, 1], decoded per dimension: scaled, stepped or rounded for integers, bucketed for choices;
//! so the stock operators suit mixed real/integer spaces). Tournament selection, uniform
//! crossover, breeder mutation (small steps within the bounds), elitist reinsertion.
//!
//! The population and the operators' RNG are seeded from the experiment seed. Fitness is an
//! integer (genevo wants `Ord`): the score times 1e6, clamped. Evaluations are cached by genome,
//! so a genome that comes back is never backtested twice; each generation's new genomes are
//! evaluated in parallel and logged in breeding order, so the log does not depend on which thread
//! evaluated what.

use super::{Sink, Study, Trial};
use crate::error::Result;
use genevo::algorithm::EvaluatedPopulation;
use genevo::operator::prelude::*;
use genevo::operator::{CrossoverOp, MutationOp, ReinsertionOp, SelectionOp};
use genevo::population::{build_population, ValueEncodedGenomeBuilder};
use genevo::prelude::*;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Scale of the integer fitness.
const SCALE: f64 = 1e6;

fn key(g: &[f64]) -> Vec<u64> {
    g.iter().map(|x| x.to_bits()).collect()
}

fn seed_bytes(seed: u64, salt: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, chunk) in s.chunks_mut(8).enumerate() {
        let v = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(salt.wrapping_add(i as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    s
}

/// A fitness of many genomes at once: (score to maximize, payload) per genome, in order.
pub type BatchFitness<'a, T> = dyn Fn(&[Vec<f64>]) -> Vec<(f64, T)> + Sync + 'a;

/// A cached fitness over the unit cube.
struct Fitness<'a, T: Clone + Send> {
    eval: &'a BatchFitness<'a, T>,
    cache: Mutex<BTreeMap<Vec<u64>, (f64, T)>>,
}

impl<T: Clone + Send> Fitness<'_, T> {
    fn score(&self, g: &[f64]) -> (f64, T) {
        let k = key(g);
        if let Some(v) = self.cache.lock().ok().and_then(|c| c.get(&k).cloned()) {
            return v;
        }
        let v = (self.eval)(&[g.to_vec()]).pop().expect("one result per genome");
        if let Ok(mut c) = self.cache.lock() {
            c.entry(k).or_insert_with(|| v.clone());
        }
        v
    }
}

impl<T: Clone + Send> std::fmt::Debug for Fitness<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fitness")
    }
}

impl<T: Clone + Send> Clone for Fitness<'_, T> {
    fn clone(&self) -> Self {
        let cache = self.cache.lock().map(|c| c.clone()).unwrap_or_default();
        Fitness { eval: self.eval, cache: Mutex::new(cache) }
    }
}

impl<T: Clone + Send> FitnessFunction<Vec<f64>, i64> for &Fitness<'_, T> {
    fn fitness_of(&self, g: &Vec<f64>) -> i64 {
        let s = self.score(g).0;
        if s.is_nan() {
            return i64::MIN / 2;
        }
        (s * SCALE).clamp(-9e18, 9e18) as i64
    }
    fn average(&self, v: &[i64]) -> i64 {
        (v.iter().map(|x| *x as i128).sum::<i128>() / v.len().max(1) as i128) as i64
    }
    fn highest_possible_fitness(&self) -> i64 {
        i64::MAX / 2
    }
    fn lowest_possible_fitness(&self) -> i64 {
        i64::MIN / 2
    }
}

/// GA settings.
#[derive(Debug, Clone, Copy)]
pub struct GaSettings {
    /// Population size.
    pub population: usize,
    /// Tournament size.
    pub tournament: usize,
    /// Per-gene mutation probability.
    pub mutation_rate: f64,
    /// Individuals kept per generation.
    pub elitism: usize,
}

/// Run a GA over `[0, 1]^d` until `budget` distinct genomes are evaluated (exactly: a
/// generation that would pass it is cut short). `eval` returns (score to maximize, payload); `on_new` receives the newly
/// evaluated genomes, in order, each generation.
///
/// The generation loop is ours, over genevo's operators, so that each generation's new genomes
/// (the initial population, then the offspring) are evaluated together in parallel with rayon
/// whatever the population size (genevo's own loop evaluates populations under 50 on one
/// thread), and logged in a fixed order.
pub fn ga_search<T: Clone + Send + Sync>(
    d: usize,
    budget: usize,
    s: GaSettings,
    seed: u64,
    eval: &(dyn Fn(&[f64]) -> (f64, T) + Sync),
    on_new: &mut dyn FnMut(Vec<(Vec<f64>, T)>) -> Result<()>,
) -> Result<()> {
    use rayon::prelude::*;
    ga_search_batched(d, budget, s, seed, &|gs: &[Vec<f64>]| gs.par_iter().map(|g| eval(g)).collect(), on_new)
}

/// [`ga_search`] with a fitness that takes each generation's new genomes together (results in
/// their order): the optimizer hands them to the batch path as one batch.
pub fn ga_search_batched<T: Clone + Send + Sync>(
    d: usize,
    budget: usize,
    s: GaSettings,
    seed: u64,
    eval: &BatchFitness<'_, T>,
    on_new: &mut dyn FnMut(Vec<(Vec<f64>, T)>) -> Result<()>,
) -> Result<()> {
    let fit = Fitness { eval, cache: Mutex::new(BTreeMap::new()) };
    let mut pop: Vec<Vec<f64>> = build_population()
        .with_genome_builder(ValueEncodedGenomeBuilder::new(d, 0.0, 1.0))
        .of_size(s.population)
        .using_seed(seed_bytes(seed, 1))
        .individuals()
        .to_vec();
    let mut rng = genevo::random::get_rng(seed_bytes(seed, 2));
    let selector = TournamentSelector::new(0.85, 2, s.tournament, 1.0, false);
    let crossover = UniformCrossBreeder::new();
    let mutator: BreederValueMutator<Vec<f64>> = BreederValueMutator::new(s.mutation_rate, 0.2, 4, 0.0, 1.0);
    let replace = 1.0 - s.elitism as f64 / s.population as f64;
    let reinserter = ElitistReinserter::new(&fit, false, replace);
    let mut seen: std::collections::BTreeSet<Vec<u64>> = Default::default();
    // Evaluate the genomes not seen before, in parallel, never more than the budget has left;
    // report them in the given order.
    let mut evaluate_new = |genomes: &[Vec<f64>], on_new: &mut dyn FnMut(Vec<(Vec<f64>, T)>) -> Result<()>| -> Result<usize> {
        let mut fresh: Vec<Vec<f64>> = Vec::new();
        for g in genomes {
            if seen.len() < budget && seen.insert(key(g)) {
                fresh.push(g.clone());
            }
        }
        let results: Vec<(f64, T)> = (fit.eval)(&fresh);
        if let Ok(mut c) = fit.cache.lock() {
            for (g, v) in fresh.iter().zip(&results) {
                c.entry(key(g)).or_insert_with(|| v.clone());
            }
        }
        let n = fresh.len();
        on_new(fresh.into_iter().zip(results).map(|(g, (_, t))| (g, t)).collect())?;
        Ok(n)
    };
    evaluate_new(&pop, on_new)?;
    let mut stale = 0;
    // Offspring that repeat a known genome cost nothing and do not count: breed until the
    // budget is met, or until 50 generations in a row bring nothing new.
    while seen_len(&fit) < budget && stale < 50 {
        let ff = &fit;
        let fitness: Vec<i64> = pop.iter().map(|g| FitnessFunction::fitness_of(&ff, g)).collect();
        let (hi, lo) = (fitness.iter().copied().max().unwrap_or(0), fitness.iter().copied().min().unwrap_or(0));
        let evaluated = EvaluatedPopulation::new(std::rc::Rc::new(pop.clone()), fitness.clone(), hi, lo, ff.average(&fitness));
        let parents = selector.select_from(&evaluated, &mut rng);
        let mut offspring: Vec<Vec<f64>> = Vec::new();
        for p in parents {
            for child in crossover.crossover(p, &mut rng) {
                offspring.push(mutator.mutate(child, &mut rng));
            }
        }
        let n = evaluate_new(&offspring, on_new)?;
        if seen_len(&fit) >= budget {
            break;
        }
        stale = if n == 0 { stale + 1 } else { 0 };
        pop = reinserter.combine(&mut offspring, &evaluated, &mut rng);
    }
    Ok(())
}

fn seen_len<T: Clone + Send>(f: &Fitness<'_, T>) -> usize {
    f.cache.lock().map(|c| c.len()).unwrap_or(0)
}

pub(crate) fn run(study: &mut Study, sink: &mut Sink) -> Result<()> {
    let c = &study.cfg;
    let s = GaSettings { population: c.population, tournament: c.tournament, mutation_rate: c.mutation_rate, elitism: c.elitism };
    let study: &Study = study;
    sink.progress.set_length(study.cfg.budget as u64);
    let eval = |gs: &[Vec<f64>]| -> Vec<(f64, Trial)> {
        study.evaluate_batch(0, gs.iter().map(|g| study.space.decode(g)).collect()).into_iter().map(|t| (t.score, t)).collect()
    };
    let mut on_new = |fresh: Vec<(Vec<f64>, Trial)>| -> Result<()> {
        let first = sink.len();
        let trials = fresh.into_iter().enumerate().map(|(k, (_, mut t))| {
            t.index = first + k;
            t
        });
        sink.push(trials.collect())
    };
    ga_search_batched(study.space.dims.len(), study.cfg.budget, s, study.le.exp.experiment.seed, &eval, &mut on_new)
}
