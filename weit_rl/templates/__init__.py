"""Template math and fitting, with no SB3 or Gymnasium: Kronecker layers and networks (`kron`),
expert data (`data`), scaler and template fitting (`fit`), training under the Kronecker
constraint (`pretrain`), the units templates are fitted in (`standardize`), rescaling ReLU
layers (`rebalance`) and templates read off a constrained expert (`expert_templates`)."""
