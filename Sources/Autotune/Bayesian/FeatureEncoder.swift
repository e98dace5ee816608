/// Turns configurations into the feature vectors the Gaussian process sees.
///
/// Numeric parameters become their unit-interval coordinate (log parameters in log space, integers at
/// their value's bucket centre, so proposals are rounded before they are modelled); booleans become 0 or 1;
/// a categorical with k choices becomes k one-hot features, so no order is invented between choices. A
/// categorical of more than ``largeCategorical`` choices (a model name out of thousands) becomes
/// ``embeddingDimension`` features instead: each choice a fixed random point of the unit cube, drawn from a seed
/// of its parameter and index, so two different choices are about equally far apart and the model stays small
/// (one-hot, 10,000 choices made 10,000 features and a proposal took 6–20 s).
///
/// A conditional parameter gets one more feature, 1 when it is active and 0 when not; an inactive parameter's
/// own features are all 0, the same for every configuration where it does not apply, rather than a value it
/// never had. Then configurations that differ only in an inactive parameter are the same point to the model.
struct FeatureEncoder: Sendable {
    private enum Slot {
        case numeric(Parameter.Domain)
        case boolean
        case oneHot([ParameterValue])
        case embedded([ParameterValue: Int], codes: [[Double]])

        var width: Int {
            switch self {
            case .numeric, .boolean: 1
            case .oneHot(let values): values.count
            case .embedded: FeatureEncoder.embeddingDimension
            }
        }
    }

    /// The most choices a categorical is one-hot encoded with.
    static let largeCategorical = 64
    /// The features of a larger categorical.
    static let embeddingDimension = 8

    private let slots: [(name: String, slot: Slot, conditional: Bool)]
    /// The number of features.
    let dimension: Int

    init(space: SearchSpace) {
        var slots: [(String, Slot, Bool)] = []
        var dimension = 0
        for parameter in space.searched {
            let conditional = parameter.condition != nil
            switch parameter.domain {
            case .int, .float:
                slots.append((parameter.name, .numeric(parameter.domain), conditional))
                dimension += 1
            case .bool:
                slots.append((parameter.name, .boolean, conditional))
                dimension += 1
            case .categorical(let values) where values.count > Self.largeCategorical:
                var lookup: [ParameterValue: Int] = [:]
                for (index, value) in values.enumerated() where lookup[value] == nil { lookup[value] = index }
                let seed = parameter.name.utf8.reduce(UInt64(14_695_981_039_346_656_037)) {
                    ($0 ^ UInt64($1)) &* 1_099_511_628_211
                }
                let codes = values.indices.map { index -> [Double] in
                    var generator = SeededGenerator(seed: seed &+ UInt64(index))
                    return (0..<Self.embeddingDimension).map { _ in generator.nextUnit() }
                }
                slots.append((parameter.name, .embedded(lookup, codes: codes), conditional))
                dimension += Self.embeddingDimension
            case .categorical(let values):
                slots.append((parameter.name, .oneHot(values), conditional))
                dimension += values.count
            case .fixed:
                break
            }
            if conditional { dimension += 1 }
        }
        self.slots = slots
        self.dimension = dimension
    }

    /// Appends the features of `configuration` to `features`.
    func encode(_ configuration: Configuration, into features: inout [Double]) {
        for (name, slot, conditional) in slots {
            let value = configuration[name]
            if conditional {
                features.append(value == nil ? 0 : 1)
                guard value != nil else {
                    features += repeatElement(0, count: slot.width)
                    continue
                }
            }
            switch slot {
            case .numeric(let domain):
                features.append(value.flatMap { domain.unit(of: $0) } ?? 0.5)
            case .boolean:
                features.append(value == .bool(true) ? 1 : 0)
            case .oneHot(let values):
                for choice in values { features.append(value == choice ? 1 : 0) }
            case .embedded(let lookup, let codes):
                features +=
                    value.flatMap { lookup[$0] }.map { codes[$0] }
                    ?? Array(repeating: 0.5, count: Self.embeddingDimension)
            }
        }
    }

    /// For each unit-cube coordinate, the feature that equals it when the parameter is a float (so gradients
    /// carry over), or `nil` for discrete parameters, whose features do not move smoothly.
    var continuousFeatures: [Int?] {
        var offset = 0
        return slots.map { _, slot, conditional in
            if conditional { offset += 1 }
            defer { offset += slot.width }
            if case .numeric(.float) = slot { return offset }
            return nil
        }
    }

    /// Appends the features of the configuration at unit-cube `point` (one coordinate per searched
    /// parameter), without building the configuration: the hot path of the acquisition search.
    func encode(unit point: [Double], into features: inout [Double]) {
        for (index, (_, slot, _)) in slots.enumerated() {
            let u = min(max(point[index], 0), 1)
            switch slot {
            case .numeric(let domain):
                switch domain {
                case .int(let lower, let upper, let step, false):
                    let grid = IntGrid(lower: lower, upper: upper, step: step)
                    features.append(grid.unit(of: grid.index(atUnit: u)))
                case .float:
                    features.append(u)
                default:
                    features.append(domain.unit(of: domain.value(atUnit: u)) ?? u)
                }
            case .boolean:
                features.append(u >= 0.5 ? 1 : 0)
            case .oneHot(let values):
                let chosen = min(Int(u * Double(values.count)), values.count - 1)
                for choice in values.indices { features.append(choice == chosen ? 1 : 0) }
            case .embedded(_, let codes):
                features += codes[min(Int(u * Double(codes.count)), codes.count - 1)]
            }
        }
    }

    /// The features of several configurations, row-major.
    func encode(_ configurations: [Configuration]) -> [Double] {
        var features: [Double] = []
        features.reserveCapacity(configurations.count * dimension)
        for configuration in configurations { encode(configuration, into: &features) }
        return features
    }
}
