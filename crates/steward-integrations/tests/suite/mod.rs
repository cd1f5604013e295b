mod energy;
mod fake_ha;
mod ha_errors;
mod ha_harness;
mod ha_live;
mod home_contract;
mod home_tools;
mod intent;
