mod home_tools;
mod intent;
