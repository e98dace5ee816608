public import Autotune
public import AutotuneRunner

/// The GPUs a study's trials may lease, decided by one rule for every command that runs trials (`run`,
/// `resume`, `worker`, `validate --dry-run`, `speedup`) and for what the dashboard shows.
public struct GPUResolution: Sendable, Hashable {
    /// The pool: what trials lease, and the value of `gpus` in constraints between parameters.
    public var gpus: [GPU]
    /// Where the pool came from, for messages.
    public var source: Source
    /// Why the pool is empty when the study needs GPUs (nvidia-smi missing, or listing none).
    public var note: String?

    /// Where a pool came from.
    public enum Source: String, Sendable, Hashable {
        /// The study needs no GPUs from the runner: it asks for none, or a scheduler (Slurm, Ray) places them.
        case notNeeded
        /// Given on the command line (`--gpus`).
        case override
        /// Declared in the task file (`resources.gpus`).
        case declared
        /// Found by nvidia-smi (or the inventory given).
        case discovered
    }

    /// The GPUs for `definition`.
    ///
    /// A study needs a pool when its trials ask for GPUs (`resources.gpus_per_trial`) or a constraint between
    /// parameters reads `gpus`; unless a scheduler places trials (`schedulerAssignsGPUs`), the pool is
    /// `override` (`--gpus`), else the task file's declared list, else what `inventory` finds.
    public static func resolve(
        for definition: StudyDefinition,
        override: [Int]? = nil,
        schedulerAssignsGPUs: Bool = false,
        inventory: any GPUInventory = NvidiaSMIInventory()
    ) async -> Self {
        let constrainsGPUs = definition.space.constraints.contains { $0.names.contains("gpus") }
        guard definition.resources.gpusPerTrial != nil || constrainsGPUs, !schedulerAssignsGPUs else {
            return Self(gpus: [], source: .notNeeded, note: nil)
        }
        if let override { return Self(gpus: override.map { GPU(index: $0) }, source: .override, note: nil) }
        switch definition.resources.gpus {
        case .declared(let indexes):
            return Self(gpus: indexes.map { GPU(index: $0) }, source: .declared, note: nil)
        case .discover:
            let found = await inventory.discover()
            return Self(gpus: found.gpus, source: .discovered, note: found.gpus.isEmpty ? found.note : nil)
        }
    }
}
