public import Autotune
public import AutotuneRunner

/// A GPU inventory that always lists the same GPUs, for tests on machines without any.
public struct FixedGPUInventory: GPUInventory {
    /// The GPUs listed.
    public var gpus: [GPU]

    /// An inventory of `gpus`.
    public init(_ gpus: [GPU]) { self.gpus = gpus }

    /// `count` idle GPUs, indexes from 0, each with `memoryMiB` of memory, all of it free.
    public init(count: Int, memoryMiB: Double = 81_559) {
        gpus = (0..<count).map {
            GPU(
                index: $0, name: "Fixed GPU", memoryTotalMiB: memoryMiB, memoryUsedMiB: 0, memoryFreeMiB: memoryMiB,
                utilizationPercent: 0)
        }
    }

    /// The fixed list.
    public func discover() async -> GPUDiscovery.Result {
        GPUDiscovery.Result(gpus: gpus, note: gpus.isEmpty ? "the inventory is empty" : nil)
    }
}
