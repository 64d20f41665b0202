"""Look inside recurrent networks: the library half of `seqtool inspect`.

- `trace`: hidden states, LSTM cell states and gate activations, step by step.
- `gradients`: how ‖∂L/∂h_t‖ decays back through time, in fresh cells or a checkpoint.
- `params`: parameter counts per component, and the three cells against the lesson formula.
- `render`: rich tables, the terminal chart, the matplotlib plot and the jsonl records.

The computing modules run the lesson cells of `backbone.cells` over the fused modules' own
weights, so what is shown is what the model computes. Importing this package imports nothing
heavy: torch comes with the submodules, which the CLI imports only when a command runs.
"""
