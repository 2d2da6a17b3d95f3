"""Model insight (seed 000's Feature Map Explorer workflow): capture a network's feature maps with
forward hooks (`feature_maps`), reduce them to per-channel statistics (`statistics`), find empty
channels and compare two input sources (sim vs real) in a static HTML report (`report`)."""
