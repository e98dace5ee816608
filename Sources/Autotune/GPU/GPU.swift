/// One GPU of a machine, as `nvidia-smi` reports it or a task file declares it.
public struct GPU: Sendable, Hashable, Codable {
    /// The index `CUDA_VISIBLE_DEVICES` uses.
    public var index: Int
    /// The stable identifier (`GPU-3db9…`), when known.
    public var uuid: String?
    /// The product name.
    public var name: String?
    /// Total memory in MiB.
    public var memoryTotalMiB: Double?
    /// Used memory in MiB.
    public var memoryUsedMiB: Double?
    /// Free memory in MiB.
    public var memoryFreeMiB: Double?
    /// Compute utilisation in percent.
    public var utilizationPercent: Double?

    /// Creates a GPU; only the index is required (declared GPUs know nothing else).
    public init(
        index: Int,
        uuid: String? = nil,
        name: String? = nil,
        memoryTotalMiB: Double? = nil,
        memoryUsedMiB: Double? = nil,
        memoryFreeMiB: Double? = nil,
        utilizationPercent: Double? = nil
    ) {
        self.index = index
        self.uuid = uuid
        self.name = name
        self.memoryTotalMiB = memoryTotalMiB
        self.memoryUsedMiB = memoryUsedMiB
        self.memoryFreeMiB = memoryFreeMiB
        self.utilizationPercent = utilizationPercent
    }
}

/// A process using a GPU, from `nvidia-smi --query-compute-apps`.
public struct GPUProcess: Sendable, Hashable, Codable {
    /// The process id.
    public var pid: Int32
    /// The process name.
    public var name: String
    /// GPU memory used, in MiB.
    public var usedMemoryMiB: Double?
    /// The GPU's uuid.
    public var gpuUUID: String

    /// Creates a record.
    public init(pid: Int32, name: String, usedMemoryMiB: Double?, gpuUUID: String) {
        self.pid = pid
        self.name = name
        self.usedMemoryMiB = usedMemoryMiB
        self.gpuUUID = gpuUUID
    }
}

/// How many GPUs a trial needs.
public struct GPURequest: Sendable, Hashable, Codable {
    /// A fixed count, or the product of the named parameters' values (e.g. tensor × pipeline parallel).
    public enum Count: Sendable, Hashable, Codable {
        /// This many GPUs for every trial.
        case fixed(Int)
        /// The product of these integer parameters of the trial's configuration.
        case product(of: [String])
    }

    /// How the count is found.
    public var count: Count
    /// The least free memory (MiB) a GPU must have to be leased, when `nvidia-smi` reports it.
    public var minimumFreeMemoryMiB: Double?

    /// Creates a request.
    public init(count: Count, minimumFreeMemoryMiB: Double? = nil) {
        self.count = count
        self.minimumFreeMemoryMiB = minimumFreeMemoryMiB
    }

    /// The number of GPUs a configuration needs.
    public func gpuCount(for configuration: Configuration) throws(GPURequestError) -> Int {
        switch count {
        case .fixed(let count):
            return count
        case .product(let names):
            var total = 1
            for name in names {
                guard let value = configuration[name]?.numericValue, value == value.rounded(), value >= 0,
                    let integer = Int(exactly: value)
                else {
                    throw GPURequestError("parameter '\(name)' must be a non-negative integer to count GPUs")
                }
                total *= integer
            }
            return total
        }
    }
}

/// A GPU request that cannot be computed for a configuration.
public struct GPURequestError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}
